"""The networks and what travels with them: preprocessing inside the model, stain handling and
augmentation, the CNN, EfficientNet-Lite0 (ImageNet weights ported offline) and Keras B0, model
cards, forward passes with test-time augmentation, embeddings, the linear head on them, Grad-CAM.
Imports core and data."""
