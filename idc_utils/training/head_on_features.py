"""Phase 1 of transfer learning on cached features: while the backbone is frozen its pooled
features do not change, so they are computed once and the head trains on them in seconds
instead of full passes (the same result without augmentation)."""

from __future__ import annotations

import numpy as np

from idc_utils.training.callbacks import epoch_logger, phase_csv
from idc_utils.training.compile import compile_model, learning_rate


def fit_head_on_features(
    clf,
    cfg,
    phase,
    images,
    train,
    val,
    cw,
    best_path,
    history_csv,
    device,
    log,
    data_fingerprint="",
):
    """Phase 1 when the backbone is frozen: its pooled features do not change, so they are
    computed once (no augmentation) and the head (dropout + sigmoid unit, the same layer objects
    as in ``clf``) trains on them for ``phase.epochs`` epochs: seconds instead of full passes."""
    import keras

    from idc_utils.models.embeddings import dataset_embeddings, embed

    if cfg.steps_per_epoch:  # a step cap (rehearsals) also caps how many patches phase 1 embeds
        n = min(len(train), cfg.steps_per_epoch * cfg.batch_size * phase.epochs)
        train = train.sample(n, random_state=cfg.seed)
        feats = keras.Model(clf.input, clf.get_layer("head_pool").output)
        f_train, f_val = embed(feats, images, train["i"]), embed(feats, images, val["i"])
    elif cfg.weights == "imagenet" and data_fingerprint:  # the same features chapter 4 uses: shared
        every = dataset_embeddings(images, data_fingerprint, cfg.backbone, cfg.image_size, log=log)
        f_train, f_val = (
            np.asarray(every[train["i"].to_numpy()]),
            np.asarray(every[val["i"].to_numpy()]),
        )
    else:
        feats = keras.Model(clf.input, clf.get_layer("head_pool").output)
        f_train, f_val = embed(feats, images, train["i"]), embed(feats, images, val["i"])
    inp = keras.Input(f_train.shape[1:], name="features")
    x = (
        clf.get_layer("head_dropout")(inp)
        if "head_dropout" in [layer.name for layer in clf.layers]
        else inp
    )
    head = keras.Model(inp, clf.get_layer("head_prob")(x), name="head_on_features")
    with device.strategy.scope():
        compile_model(
            head,
            learning_rate(
                phase.learning_rate,
                cfg.schedule,
                phase.epochs * int(np.ceil(len(train) / cfg.batch_size)),
            ),
            device,
            cfg.label_smoothing,
        )
    callbacks = [
        keras.callbacks.ModelCheckpoint(
            str(best_path),
            monitor="val_auc",
            mode="max",
            save_best_only=True,
            save_weights_only=True,
        ),
        phase_csv(history_csv, phase.name),
        epoch_logger(phase.epochs, phase.name + " (cached features)", log),
    ]
    # the checkpoint holds the head model's weights; copy the best ones back into clf
    head.fit(
        f_train,
        train["label"].to_numpy(np.float32),
        batch_size=cfg.batch_size,
        epochs=phase.epochs,
        validation_data=(f_val, val["label"].to_numpy(np.float32)),
        class_weight=cw,
        verbose=0,
        callbacks=callbacks,
        shuffle=True,
    )
    if best_path.exists():
        head.load_weights(best_path)
    clf.save_weights(best_path)
