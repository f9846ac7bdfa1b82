"""What a chapter needs besides the library: its parameters (profiles), the run folder, the
book's figure style, and one module of figures per chapter (or pair of chapters)."""
