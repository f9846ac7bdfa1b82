"""Constants, errors and small utilities the layers above use, and the reader of the legacy
PyTorch checkpoint that ships the Lite0 weights (it needs nothing but NumPy). Imports nothing of
ours."""
