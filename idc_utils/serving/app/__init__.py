"""The Gradio demo: one module per tab, the pictures it draws, the input it accepts, and the
page that puts them together (:mod:`idc_utils.serving.app.ui`)."""
