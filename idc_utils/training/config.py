"""The training recipe: phases and every setting a training run takes, as one configuration that
a model card records and :func:`idc_utils.training.reuse.reuse_key` compares."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from idc_utils.models.augment import AugmentConfig

#: bump when :func:`idc_utils.training.loop.fit` changes what a given configuration trains, so
#: that saved models are not reused
RECIPE_VERSION = 2


@dataclass
class Phase:
    """One phase of training: ``epochs`` at ``learning_rate`` with the last ``unfreeze_blocks``
    blocks of the backbone trainable (0: backbone frozen, only the head learns; ``"all"``:
    everything)."""

    name: str
    epochs: int
    learning_rate: float
    unfreeze_blocks: int | str  # 0: backbone frozen; 'all': everything


@dataclass
class TrainConfig:
    """Everything a training run takes. The fields, in order:

    Attributes:
        backbone: ``cnn``, ``efficientnet_lite0`` or ``efficientnet_b0``
            (:data:`idc_utils.models.classifier.BACKBONES`).
        image_size: the size patches are resized to inside the model (50 -> ``image_size``).
        batch_size: patches per training step.
        phases: the :class:`Phase` list, run in order (:meth:`transfer`, :meth:`scratch`).
        dropout: dropout before the sigmoid unit of the head.
        class_weights: weigh the loss so that each class contributes half
            (:func:`idc_utils.training.class_weights.class_weights`).
        augment: augmentation strengths (:class:`idc_utils.models.augment.AugmentConfig` as a
            dict); ``None``: no augmentation.
        patience: EarlyStopping patience on validation AUC, in epochs.
        seed: seeds Python, NumPy, TensorFlow, the shuffling and the augmentation.
        target_recall: the recall the operating threshold must reach on validation patients.
        weights: ``"imagenet"`` (pretrained backbone) or ``None`` (random initialisation).
        cnn_width: filters of the CNN's first stage (doubling per stage).
        steps_per_epoch: cap on steps per epoch (rehearsals); ``None``: one pass over the
            training split.
        label_smoothing: binary cross-entropy's label smoothing.
        train_bn: fine-tune BatchNorm statistics too in unfrozen phases (needs batches of 16+).
        schedule: learning rate within a phase: ``constant`` or ``cosine`` (decays to 0).
        head_on_features: phase 1 (frozen backbone) trains the head on the backbone's cached
            features instead of full passes (:mod:`idc_utils.training.head_on_features`).
        tta: score with test-time augmentation (the 8 symmetries of the square) when choosing
            the threshold, in ``predict`` and in the app.
        threshold_method: how the threshold is chosen on validation patients
            (:data:`idc_utils.evaluation.thresholds.THRESHOLD_METHODS`).
        context: also fit slide-context scoring on validation patients (needs ``x, y``;
            :mod:`idc_utils.evaluation.slide_context`).
    """

    backbone: str = "efficientnet_lite0"
    image_size: int = 200
    batch_size: int = 32
    phases: list[Phase] = field(default_factory=list)
    dropout: float = 0.3
    class_weights: bool = True
    augment: dict | None = field(default_factory=lambda: AugmentConfig().as_dict())
    patience: int = 3
    seed: int = 1337
    target_recall: float = 0.93
    weights: str | None = "imagenet"
    cnn_width: int = 32
    steps_per_epoch: int | None = None  # None: one pass over the training split
    label_smoothing: float = 0.0
    train_bn: bool = False  # fine-tune BatchNorm statistics too (needs batches of 16+)
    schedule: str = "constant"  # learning rate within a phase: constant | cosine (decays to 0)
    head_on_features: bool = False  # phase 1 (frozen backbone) trains the head on cached features
    tta: bool = False  # score with test-time augmentation (8 symmetries): threshold, predict, app
    threshold_method: str = "patient_bootstrap"  # see evaluation.thresholds
    context: bool = True  # fit slide-context scoring on validation patients (needs x, y)

    @classmethod
    def transfer(
        cls, phase1_epochs=3, phase2_epochs=10, lr=1e-3, finetune_lr=1e-4, unfreeze_blocks=6, **kw
    ):
        """The source paper's transfer learning: the head alone on the frozen backbone, then the
        last ``unfreeze_blocks`` blocks fine-tuned at ``finetune_lr``."""
        phases = [
            Phase("head", phase1_epochs, lr, 0),
            Phase("finetune", phase2_epochs, finetune_lr, unfreeze_blocks),
        ]
        return cls(phases=[p for p in phases if p.epochs > 0], **kw)

    @classmethod
    def scratch(cls, epochs=15, lr=1e-3, **kw):
        """A network trained from scratch in one phase (the CNN baseline)."""
        kw.setdefault("backbone", "cnn")
        kw.setdefault("weights", None)
        kw.setdefault("train_bn", True)  # a network trained from scratch learns its BatchNorm too
        return cls(phases=[Phase("train", epochs, lr, "all")], **kw)

    def as_dict(self) -> dict:
        """The configuration as plain JSON-able values (what a card's ``training`` holds)."""
        d = asdict(self)
        d["phases"] = [asdict(p) for p in self.phases]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """The configuration a model card recorded (``card["training"]``): retrain the same
        recipe on other data."""
        known = {f for f in cls.__dataclass_fields__}
        kw = {k: v for k, v in d.items() if k in known}
        kw["phases"] = [Phase(**p) for p in d.get("phases", [])]
        return cls(**kw)

    @classmethod
    def for_transfer(cls, params) -> TrainConfig:
        """Chapter 6's recipe from its parameters (a dict or
        :class:`~idc_utils.chapters.params.ChapterParams`)."""
        p = dict(params.as_dict() if hasattr(params, "as_dict") else params)
        return cls.transfer(
            phase1_epochs=p["phase1_epochs"],
            phase2_epochs=p["phase2_epochs"],
            lr=p["lr"],
            finetune_lr=p["finetune_lr"],
            unfreeze_blocks=p["unfreeze_blocks"],
            backbone=p["backbone"],
            image_size=p["image_size"],
            batch_size=p["batch_size"],
            dropout=p["dropout"],
            augment=p["augment"],
            patience=p["patience"],
            seed=p["seed"],
            target_recall=p["target_recall"],
            train_bn=p["train_bn"],
            schedule=p.get("schedule", "constant"),
            head_on_features=bool(p.get("head_on_features", False)),
            tta=bool(p.get("tta", False)),
            label_smoothing=float(p.get("label_smoothing") or 0.0),
            steps_per_epoch=p.get("max_train_steps"),
            threshold_method=p.get("threshold_method", "patient_bootstrap"),
        )

    @classmethod
    def for_cnn(cls, params) -> TrainConfig:
        """Chapter 5's recipe from its parameters."""
        p = dict(params.as_dict() if hasattr(params, "as_dict") else params)
        return cls.scratch(
            epochs=p["cnn_epochs"],
            lr=p["cnn_lr"],
            image_size=p["cnn_image_size"],
            cnn_width=p["cnn_width"],
            batch_size=p["cnn_batch_size"],
            augment=p["augment"],
            dropout=p["dropout"],
            patience=p["cnn_patience"],
            seed=p["seed"],
            target_recall=p["target_recall"],
            schedule=p.get("cnn_schedule", "constant"),
            tta=bool(p.get("tta", False)),
            steps_per_epoch=p.get("max_train_steps"),
            threshold_method=p.get("threshold_method", "patient_bootstrap"),
        )
