"""How good a model is, and at which threshold: metrics, patient-bootstrap intervals, operating
thresholds chosen on validation patients, calibration, slide context, tables per patient and per
outcome, and the measures that judge synthetic patches. Imports core, data and models."""
