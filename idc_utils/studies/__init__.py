"""The chapters' experiments and their verdicts: dataset summaries, the imbalance study, the
synthetic-image gain, the recipe study, the learning curve, the literature table. Glue that
may change with the book; other tools should use the layers below. Imports any layer below."""
