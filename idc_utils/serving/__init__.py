"""Using a saved model: ``predict`` (the stable CLI and API), tissue maps, DICOMweb (search,
stream, store back as a Segmentation), a local Orthanc, and the Gradio app. Imports core, data,
models and evaluation; never training."""
