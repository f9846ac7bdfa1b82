"""idc_utils: the package every chapter of idc-book shares.

Research and teaching software for invasive ductal carcinoma (IDC) detection in H&E
patches. It is not a diagnostic device.

Modules (one concern each):
    data        find, parse, validate and load patches; the decoded-patch cache
    split       patient-level train/val/test split and leakage checks
    runs        profiles, chapter parameters, the run folder
    eda         dataset summaries for the exploratory chapter
    preprocess  resizing and scaling layers, augmentation, the tf.data pipeline
    models      the CNN, EfficientNet-Lite0 (ImageNet weights ported offline), Keras B0, the head
    torch_weights  reads the legacy PyTorch checkpoint of the Lite0 weights with NumPy
    balance     class weights, embeddings (cached), SMOTE and friends on embeddings
    generate    synthetic patches: a class-conditional diffusion model; KID, memorisation, probe
    train       training phases, schedules, callbacks, devices, reuse, multi-worker
    ensemble    several trained models averaged into one saved model with its own card
    cards       model cards: a saved model with its threshold and facts
    infer       forward passes with or without test-time augmentation
    evaluate    metrics, thresholds, patient-bootstrap intervals, calibration
    learning_curve  AUC against training patients: is the gap to the literature data or recipe?
    explain     Grad-CAM
    slides      mosaics and maps rebuilt from patch coordinates, tiling
    predict     a loaded model (Predictor), scoring files into a CSV and images tile by tile
    dicom       DICOM slides and patches, DICOMweb search/stream/store, results as Segmentations
    orthanc     a local Orthanc DICOMweb server for the chapter, the app and the tests
    context     slide context: a tile's score adjusted by its neighbours'
    app         the Gradio demo (Patch, Tissue and DICOMweb tabs)
    figures     the figures and tables the chapters show
    book        run the chapters with papermill (reusing what has not changed), build the book
    __main__    the command line: book, train, predict, app, publish, data, dicom
"""

__version__ = "0.1.0"

DISCLAIMER = (
    "Research and teaching software. Not a medical device: not for diagnosis, "
    "treatment or any clinical decision."
)
