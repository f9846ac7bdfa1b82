"""Which diffusion generator makes tissue? Variants of the generator's configuration, each
trained for the same number of steps on the same training patients, and judged along the way on
**validation** patients only (test patients never choose anything here):

- fidelity: KID x 1000 of synthetic patches against real validation patches of the same class,
  both at the generator's size (the chapter's bar is 150 for each class);
- label fidelity: the share of synthetic patches of each class that the run's EfficientNet calls
  IDC+ at its operating threshold (the bars: at least 60% of IDC+, at most 15% of IDC-);
- the denoising error on validation patches (what chooses the weights within one variant).

``tools/generator_study.py`` runs it and writes ``book/data/generator_study.json``; the
synthetic-patches chapter shows that table and loads the chosen variant's checkpoint. Research
and teaching software, not a medical device.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from idc_utils.core.paths import display_path, project_root
from idc_utils.evaluation import synthetic_quality
from idc_utils.training import adversarial, diffusion, generator, generator_process

#: The bars of issue 22, measured by the chapter's own tables.
KID_BAR_X1000 = 150.0
CALLED_POS_MIN = 0.60  # share of synthetic IDC+ called IDC+
CALLED_NEG_MAX = 0.15  # share of synthetic IDC- called IDC+

#: The sampler every variant is judged with along its training (the profile's until 2026-12-03),
#: so that its curve compares steps, not samplers; the sweep then chooses the chapter's.
JUDGING_SAMPLER = {"diffusion_steps": 8, "guidance": 2.0}

#: variant name -> (what it changes, GenConfig overrides on the profile's configuration); each
#: override is a profile parameter (gen_prediction, gen_max_signal_rate, gen_widths,
#: gen_block_depth, gen_patch, gen_anneal_*), so that the profile can name the chosen variant
VARIANTS = {
    "eps": (
        "the Keras example's parameterisation: the network estimates the noise",
        {"prediction": "eps"},
    ),
    "v": (
        "velocity prediction: the network estimates v = signal rate x noise - noise rate x patch",
        {"prediction": "v"},
    ),
    "v_sharp": (
        "velocity prediction, a schedule that reaches nearly clean patches (signal rate 0.999 "
        "at t = 0, not 0.95), so that training and the sampler's last steps see fine detail",
        {"prediction": "v", "max_signal_rate": 0.999},
    ),
    "v_wide": (
        "velocity prediction, a U-Net of twice the widths (64, 128, 192)",
        {"prediction": "v", "widths": (64, 128, 192)},
    ),
    "v_deep": (
        "velocity prediction, two residual blocks per resolution",
        {"prediction": "v", "block_depth": 2},
    ),
    "v_fold": (
        "v_sharp with 2 x 2 pixels folded into channels first, so that a U-Net of twice the "
        "widths (64, 128, 192) costs no more per step",
        {"prediction": "v", "max_signal_rate": 0.999, "patch": 2, "widths": (64, 128, 192)},
    ),
    "v_fold_anneal": (
        "v_fold for 12,000 steps, then 6,000 more with the learning rate falling to 0 along a "
        "half cosine and a weight average of longer memory (decay 0.999, not 0.99)",
        {
            "prediction": "v",
            "max_signal_rate": 0.999,
            "patch": 2,
            "widths": (64, 128, 192),
            "anneal_from": 12000,
            "anneal_steps": 6000,
            "anneal_ema": 0.999,
        },
    ),
}

#: variant -> the variant whose first steps it repeats (it only anneals after them): the study
#: starts it from that variant's checkpoint, which gives the weights training anew would
STARTS_FROM = {"v_fold_anneal": "v_fold"}


def variant_config(base: diffusion.GenConfig, name: str) -> diffusion.GenConfig:
    """The profile's generator configuration with variant ``name``'s changes."""
    if name not in VARIANTS:
        raise ValueError(f"unknown generator variant {name!r}; known: {sorted(VARIANTS)}")
    return replace(base, **VARIANTS[name][1])


def start_from_source(name: str, cfg: diffusion.GenConfig, study_dir, judged: dict) -> list:
    """Start variant ``name`` (configuration ``cfg``) from its source's checkpoint
    (:data:`STARTS_FROM`) when it has none of its own and the source's trains alike up to its
    step: copy the source's folder into ``study_dir / name`` and return the source's judgements
    up to that step (``judged``: variant -> judgements), which judged the same weights. Returns
    ``[]`` when it starts from nothing (or from its own checkpoint)."""
    source = STARTS_FROM.get(name)
    study_dir = Path(study_dir)
    if source is None or (study_dir / name / "generator.json").exists():
        return []
    state_path = study_dir / source / "generator.json"
    if not state_path.exists():
        return []
    state = json.loads(state_path.read_text())
    before = diffusion.GenConfig.from_dict(state["config"])
    if not diffusion.trains_alike(before, cfg, state["steps"]):
        return []
    if (study_dir / name).exists():  # an interrupted start, before its first checkpoint
        shutil.rmtree(study_dir / name)
    shutil.copytree(study_dir / source, study_dir / name)
    return [dict(r) for r in judged.get(source, []) if r["step"] <= state["steps"]]


def judge_generator(
    gen: diffusion.Generator,
    val_small: np.ndarray,
    val_labels: np.ndarray,
    embed,
    classify,
    threshold: float,
    *,
    per_class: int = 200,
    diffusion_steps: int = 8,
    guidance: float = 2.0,
    seed: int = 0,
    classes: tuple = (0, 1),
) -> dict:
    """Fidelity and label fidelity of ``per_class`` synthetic patches of each class drawn with
    ``seed``. ``val_small``: real validation patches in the generator's range and size (the
    round trip); ``embed(uint8 50-px patches) -> embeddings``; ``classify(uint8 50-px patches)
    -> P(IDC+)`` at ``threshold``. Returns KID x 1000 per class, the shares called IDC+, and
    whether each bar is met; beside them, the shares of the real validation patches of each
    class called IDC+ after the same round trip (``real_called_pos_*``): what a generator that
    made real tissue at its size would score. ``classes``: judge only these (a generator of
    one class); the bars are then judged only when both classes are."""
    val_labels = np.asarray(val_labels).astype(int)
    real_big = diffusion.enlarge(val_small)
    real_emb = embed(real_big)
    real_called = np.asarray(classify(real_big)) >= threshold
    out = {}
    for c in classes:
        name = ("neg", "pos")[c]
        syn = gen.sample(per_class, c, 2 * seed + c, diffusion_steps, guidance)
        big = diffusion.to_patch_size(syn)
        syn_emb = embed(big)
        real_c = real_emb[val_labels == c]
        m = min(100, len(real_c), len(syn_emb))
        out[f"kid_{name}_x1000"] = (
            1000 * synthetic_quality.kid(syn_emb, real_c, subset_size=m, seed=seed)[0]
        )
        out[f"called_pos_{name}"] = float((np.asarray(classify(big)) >= threshold).mean())
        out[f"real_called_pos_{name}"] = float(real_called[val_labels == c].mean())
    if set(classes) != {0, 1}:
        out["meets_bars"] = None
        return out
    out["meets_bars"] = bool(
        out["kid_neg_x1000"] <= KID_BAR_X1000
        and out["kid_pos_x1000"] <= KID_BAR_X1000
        and out["called_pos_pos"] >= CALLED_POS_MIN
        and out["called_pos_neg"] <= CALLED_NEG_MAX
    )
    return out


class StudyJudge:
    """The study's judge for one split, set up once and used on every generator it judges
    (``tools/generator_study.py``, ``tools/gan_probe.py``): up to 1,000 validation patches
    drawn with ``seed``, their labels, an embedder and a classifier at its threshold.
    ``judge(gen, size, ...)`` is :func:`judge_generator` on those patches at ``size`` pixels."""

    def __init__(self, images, df, embed, classify, threshold, *, seed: int, per_class: int):
        val = df[df.split == "val"]
        rng = np.random.default_rng(seed)
        self.pick = np.sort(rng.choice(val["i"].to_numpy(), min(1000, len(val)), False))
        self.labels = df.set_index("i").loc[self.pick, "label"].to_numpy().astype(int)
        self.images, self.embed, self.classify = images, embed, classify
        self.threshold, self.seed, self.per_class = threshold, seed, per_class
        self._small = {}

    @classmethod
    def for_run(cls, run_dir, images, df, params, per_class: int) -> StudyJudge:
        """The judge of a run folder: its EfficientNet and the profile's embedder."""
        from idc_utils.models import embeddings
        from idc_utils.serving import predictor

        classifier = predictor.Predictor.load(Path(run_dir) / "models" / "efficientnet.keras")
        net = embeddings.embedder(params["embed_backbone"], params["embed_image_size"])

        def embed(patches):
            return embeddings.embed(net, patches, np.arange(len(patches)))

        return cls(
            images,
            df,
            embed,
            classifier.probabilities,
            classifier.threshold,
            seed=int(params["seed"]),
            per_class=per_class,
        )

    def val_small(self, size: int) -> np.ndarray:
        """The validation patches in a generator's range at ``size`` pixels (reduced once)."""
        if size not in self._small:
            self._small[size] = diffusion.to_model_range(self.images[self.pick], size)
        return self._small[size]

    def __call__(self, gen, size: int, **sampling) -> dict:
        """:func:`judge_generator` of ``gen`` (patches of ``size`` pixels); ``sampling``:
        ``diffusion_steps``, ``guidance``, ``classes``."""
        return judge_generator(
            gen,
            self.val_small(size),
            self.labels,
            self.embed,
            self.classify,
            self.threshold,
            per_class=self.per_class,
            seed=self.seed,
            **sampling,
        )


def blurred_tissue_kid(
    train_images: np.ndarray,
    train_labels,
    val_small: np.ndarray,
    val_labels,
    embed,
    sizes=(24, 16, 12),
    per_class: int = 150,
    seed: int = 0,
) -> list[dict]:
    """A yardstick for the KID bar: real **training** patches reduced to each of ``sizes``
    pixels and enlarged again (sharpness lost, tissue kept), against the same real validation
    patches the generator is judged on. KID x 1000 per class and size."""
    rng = np.random.default_rng(seed)
    train_labels = np.asarray(train_labels).astype(int)
    val_labels = np.asarray(val_labels).astype(int)
    real = embed(diffusion.enlarge(val_small))
    rows = []
    for c, name in ((0, "neg"), (1, "pos")):
        pool = np.flatnonzero(train_labels == c)
        pick = rng.choice(pool, min(per_class, len(pool)), replace=False)
        real_c = real[val_labels == c]
        for size in sizes:
            e = embed(diffusion.round_trip(train_images[pick], size))
            m = min(100, len(e), len(real_c))
            kid = synthetic_quality.kid(e, real_c, subset_size=m, seed=seed)[0]
            rows.append({"class": name, "size": int(size), "kid_x1000": 1000 * kid})
    return rows


def bars_met(judgement: dict) -> int:
    """How many of the four bars a judgement meets (KID for each class, label fidelity for
    each class)."""
    return (
        int(judgement["kid_neg_x1000"] <= KID_BAR_X1000)
        + int(judgement["kid_pos_x1000"] <= KID_BAR_X1000)
        + int(judgement["called_pos_pos"] >= CALLED_POS_MIN)
        + int(judgement["called_pos_neg"] <= CALLED_NEG_MAX)
    )


def _rank(judgement: dict) -> tuple:
    """Most bars met first, then the lower worst-class KID."""
    worst = max(judgement["kid_neg_x1000"], judgement["kid_pos_x1000"])
    return (-bars_met(judgement), worst)


def choose_variant(results: dict) -> str:
    """The variant to use: the one whose last judgement meets the most bars, and among those
    the lowest worst-class KID. ``results``: variant -> list of judgements (dicts of
    :func:`judge_generator`, with ``step``), in order."""
    if not results:
        raise ValueError("no variant was judged")
    return min(results, key=lambda name: _rank(results[name][-1]))


#: The most DDIM steps per patch the sample book's chapter affords. Its budget is 8 minutes at
#: ``cpu_ref`` 80. On 2026-12-03, beside a benchmark (``cpu_ref`` 73-86), the chapter took 525 s
#: of cells with 20 steps: 332 s drawing patches (16.6 s per step) and 193 s for the rest, so
#: 480 s leave room for 17 steps. A setting of more steps is tried and shown, but not chosen.
MAX_SAMPLER_STEPS = 17


def choose_sampling(rows: list[dict], max_steps: int | None = None) -> dict:
    """The sampler's settings (``diffusion_steps``, ``guidance``) of the row to use, by the rule
    of :func:`choose_variant`: the most bars met, then the lower worst-class KID; among the
    rows of at most ``max_steps`` steps, when given (what the chapter's budget affords)."""
    affordable = [r for r in rows if max_steps is None or r["diffusion_steps"] <= max_steps]
    if not affordable:
        raise ValueError(
            f"no sampler setting was judged with at most {max_steps} steps; "
            "add one to --sweep-steps"
        )
    best = min(affordable, key=_rank)
    return {"diffusion_steps": int(best["diffusion_steps"]), "guidance": float(best["guidance"])}


#: Where the sample book's generator is published (tools/generator_study.py --keep).
COMMITTED_DIR = project_root() / "book" / "data" / "generator"


def _published(committed, load, what: str, log) -> tuple | None:
    """``(generator, source)``: ``load(folder)`` of the folder ``committed`` names (relative:
    to the project); ``None`` when it names none, or its generator is missing, damaged or does
    not fit, saying why."""
    if not committed:
        return None
    folder = Path(committed)
    folder = folder if folder.is_absolute() else project_root() / folder
    try:
        return load(folder), f"published with the book in {display_path(folder)}"
    except (OSError, ValueError) as e:  # OSError: missing or damaged files
        log(f"[{what.lower()}] not using the published {what}: {e}")
        return None


def committed_or_trained(
    images_uint8: np.ndarray,
    train_rows,
    cfg: diffusion.GenConfig,
    out_dir,
    *,
    steps: int,
    val_rows=None,
    committed=None,
    log=print,
) -> tuple[diffusion.Generator, str]:
    """The generator a chapter uses, and where it came from (a phrase): the one published in
    ``committed`` (a folder; relative: to the project) when it was made with ``cfg``, for
    ``steps`` steps, on these training patches; otherwise one trained here, in ``out_dir``, for
    ``steps`` steps (resumed from a checkpoint there when one fits), saying why. Training runs
    in a child process when the patches are the dataset's memory map
    (:mod:`~idc_utils.training.generator_process`): the memory it took goes back when it ends."""
    load = partial(generator.load_committed, cfg=cfg, steps=steps, rows=train_rows)
    published = _published(committed, load, "generator", log)
    if published:
        return published
    gen = generator_process.train_apart(
        images_uint8,
        train_rows,
        cfg,
        out_dir,
        steps=steps,
        val_rows=val_rows,
        restart=True,
        log=log,
    )
    return gen, "trained in this run"


def committed_or_trained_gan(
    images_uint8: np.ndarray,
    train_rows,
    cfg: adversarial.GanConfig,
    out_dir,
    *,
    steps: int,
    committed=None,
    log=print,
) -> tuple[adversarial.GanGenerator, str]:
    """The GAN a chapter uses, and where it came from (a phrase): the one published in
    ``committed`` (a folder; relative: to the project) when it was made with ``cfg``, for
    ``steps`` steps, on these training patches; otherwise one trained here, in ``out_dir``,
    for ``steps`` steps (resumed from a checkpoint there when one fits), saying why."""
    load = partial(adversarial.load_committed_gan, cfg=cfg, steps=steps, rows=train_rows)
    published = _published(committed, load, "GAN", log)
    if published:
        return published
    gan = adversarial.train_gan(
        images_uint8, train_rows, cfg, out_dir, steps=steps, restart=True, log=log
    )
    return gan, "trained in this run"


#: what ``gen_judged`` may name, how the chapter's prose names it, and its figures' rows
JUDGED_NAMES = {"diffusion": "the diffusion generator", "gan": "the GAN"}
JUDGED_LABELS = {"diffusion": "diffusion", "gan": "GAN"}


def judged_generator(
    kind: str,
    diffusion_gen,
    diffusion_source: str,
    images_uint8,
    train_rows,
    params,
    out_dir,
    log=print,
) -> tuple:
    """``(generator, source, name)``: the generator whose patches a chapter judges and adds to
    the training data, chosen by ``kind`` (the parameter ``gen_judged``): ``"diffusion"``, the
    diffusion generator it already has; ``"gan"``, the GAN published in ``gan_checkpoint``
    when it fits these training patches and settings, otherwise one trained in ``out_dir``
    for ``gan_train_steps`` steps. Both sample with the same call, so the judging is the same."""
    if kind not in JUDGED_NAMES:
        raise ValueError(
            f"gen_judged must be one of {sorted(JUDGED_NAMES)}, not {kind!r} "
            "(idc_utils/profiles.yml, or -p gen_judged ...)"
        )
    if kind == "diffusion":
        return diffusion_gen, diffusion_source, JUDGED_NAMES[kind]
    p = params.as_dict() if hasattr(params, "as_dict") else params
    gan, source = committed_or_trained_gan(
        images_uint8,
        train_rows,
        adversarial.config_from_params(p),
        out_dir,
        steps=p["gan_train_steps"],
        committed=p["gan_checkpoint"],
        log=log,
    )
    return gan, source, JUDGED_NAMES[kind]


def sampling_table(results: dict) -> pd.DataFrame:
    """The sampler settings tried on the chosen generator, one row each, the chosen marked, and
    whether the chapter's budget affords each (``max_steps``, when the study had one)."""
    sampling = results["sampling"]
    table = pd.DataFrame(sampling["rows"])
    chosen = sampling["chosen"]
    if sampling.get("max_steps"):
        table["within budget"] = table["diffusion_steps"] <= sampling["max_steps"]
    table["chosen"] = (table["diffusion_steps"] == chosen["diffusion_steps"]) & (
        table["guidance"] == chosen["guidance"]
    )
    names = {
        "kid_neg_x1000": "KID x1000 IDC-",
        "kid_pos_x1000": "KID x1000 IDC+",
        "called_pos_pos": "IDC+ called IDC+",
        "called_pos_neg": "IDC- called IDC+",
        "meets_bars": "meets every bar",
    }
    return table.rename(columns=names).set_index(["diffusion_steps", "guidance"])


def study_table(results: dict) -> pd.DataFrame:
    """The study (``book/data/generator_study.json``) as a table: one row per variant at its
    last judgement, the chosen one marked."""
    rows = []
    for name, v in results["variants"].items():
        if not v["judged"]:
            continue
        last = v["judged"][-1]
        rows.append(
            {
                "variant": name + (" (chosen)" if name == results.get("chosen") else ""),
                "what it changes": v["changes"],
                "steps": last["step"],
                "training minutes": v["train_seconds"] / 60,
                "KID x1000 IDC-": last["kid_neg_x1000"],
                "KID x1000 IDC+": last["kid_pos_x1000"],
                "IDC+ called IDC+": last["called_pos_pos"],
                "IDC- called IDC+": last["called_pos_neg"],
                "bars met (of 4)": bars_met(last),
            }
        )
    return pd.DataFrame(rows).set_index("variant")


def gan_probe_table(probe: dict) -> pd.DataFrame:
    """The GAN probe's judgements (``tools/gan_probe.py``'s output) as a table, one row per
    judgement, with the real validation patches' shares called IDC+ after the same round trip
    beside the synthetic ones."""
    rows = [
        {
            "steps": j["step"],
            "training minutes": round(j["train_seconds"] / 60, 1),
            "KID x1000 IDC-": j["kid_neg_x1000"],
            "KID x1000 IDC+": j["kid_pos_x1000"],
            "IDC+ called IDC+": j["called_pos_pos"],
            "IDC- called IDC+": j["called_pos_neg"],
            "real IDC- called IDC+": j["real_called_pos_neg"],
            "bars met (of 4)": bars_met(j),
        }
        for j in probe["judged"]
    ]
    return pd.DataFrame(rows).set_index("steps")


def chosen_sampling_row(results: dict) -> dict:
    """The sampling table's row of the chosen sampler setting: the chosen generator judged as
    the chapter samples it."""
    chosen = results["sampling"]["chosen"]
    for row in results["sampling"]["rows"]:
        if all(row[k] == v for k, v in chosen.items()):
            return row
    raise ValueError(f"the study's sampling table has no row for its chosen setting {chosen}")


def gan_against_diffusion(probe: dict, results: dict, called_neg_max: float) -> dict:
    """The GAN probe's last judgement beside the diffusion generator as the chapter samples it
    (:func:`chosen_sampling_row`), as the chapter's words: KID and share called IDC+ per class
    (``gan_kid_neg``, ``diff_called_pos``, ...), the real patches' share after the round trip
    (``gan_real_neg``) and whether it ``misses`` or ``meets`` the IDC- bar (``real_vs_bar``),
    the training minutes, which generator's worse class has the ``lower`` KID
    (``gan_vs_diff``, with ``gan_worse`` and ``diff_worse``), how many of the four bars each
    meets (``gan_bars``, ``diff_bars``) and which one the study's rule favours
    (``rule_favours``: most bars met, then the lower worse-class KID)."""
    gan, diff = probe["judged"][-1], chosen_sampling_row(results)
    words = {
        "gan_steps": f"{gan['step']:,}",
        "gan_minutes": f"{gan['train_seconds'] / 60:.0f}",
        "diff_minutes": f"{results['variants'][results['chosen']]['train_seconds'] / 60:.0f}",
    }
    for c in ("neg", "pos"):
        for who, row in (("gan", gan), ("diff", diff)):
            words[f"{who}_kid_{c}"] = f"{row[f'kid_{c}_x1000']:.0f}"
            words[f"{who}_called_{c}"] = f"{row[f'called_pos_{c}']:.0%}"
        words[f"gan_real_{c}"] = f"{gan[f'real_called_pos_{c}']:.0%}"
    words["real_vs_bar"] = "misses" if gan["real_called_pos_neg"] > called_neg_max else "meets"
    worse = [round(max(r["kid_neg_x1000"], r["kid_pos_x1000"])) for r in (gan, diff)]
    words["gan_vs_diff"] = (
        "lower" if worse[0] < worse[1] else "higher" if worse[0] > worse[1] else "the same"
    )
    words["gan_worse"], words["diff_worse"] = f"{worse[0]}", f"{worse[1]}"
    words["gan_bars"], words["diff_bars"] = (str(bars_met(r)) for r in (gan, diff))
    ranks = {name: _rank(r) for name, r in (("gan", gan), ("diffusion", diff))}
    favoured = min(ranks, key=ranks.get) if len(set(ranks.values())) > 1 else None
    words["rule_favours"] = JUDGED_NAMES[favoured] if favoured else "neither"
    if probe["machine"] == results["machine"]:
        words["machines"] = "the same processor model"
        words["diff_reader"] = "the study's EfficientNet, trained on that processor model too"
    else:
        words["machines"] = f"two processors ({probe['machine']}; {results['machine']})"
        words["diff_reader"] = (
            f"the study's EfficientNet, another training of the same recipe ({results['machine']})"
        )
    words["gan_schedule"] = gan_schedule_sentence(probe["settings"]["config"], gan["step"])
    return words


def gan_schedule_sentence(cfg: dict, last_step: int) -> str:
    """How the GAN's learning rates ran up to its last judged step, in words: constant, or
    falling along a half cosine (:func:`~idc_utils.training.adversarial.learning_rate`) from
    ``anneal_from``, to 0 or, when the run ended first, to the share of the start it reached;
    then each warm restart begun by that step."""
    c = adversarial.GanConfig.from_dict(cfg)  # (the defaults fill a record that predates a field)
    start, length = c.anneal_from, c.anneal_steps
    if not length or last_step <= start + 1:
        return "Its learning rates stayed the same throughout."
    begun = f"From step {start:,} both learning rates fell along a half cosine"
    if last_step < start + length:
        share = diffusion.cosine_annealed(1.0, last_step, start, length)
        return (
            f"{begun} towards 0 at step {start + length:,}; at step {last_step:,} they were at "
            f"{share:.0%} of the start."
        )
    done = f"{begun}, to 0 at step {start + length:,}, as the diffusion generator's did."
    cycles = [cyc for cyc in c.restart_cycles if last_step > cyc[0]]
    if not cycles:
        return done
    told = []
    for k, (again, length, lr) in enumerate(cycles):
        end = again + length
        fell = "fell to 0 again" if last_step >= end else "were falling towards 0"
        rose = f"rose again to {lr:g} ({lr / c.lr:.0%} of the first rate)"
        if k and lr == cycles[k - 1][2]:
            rose = "rose to that rate once more"
        told.append(f"at step {again:,} they {rose} and {fell} at step {end:,}")
    which = (
        "Then, from the weights annealing left, a warm restart"
        if len(cycles) == 1
        else f"Then {_count_words(len(cycles))} warm restarts, each from the weights the one "
        "before left"
    )
    return f"{done} {which}: {'; '.join(told)}, so that the finished GAN trained on."


def _count_words(n: int) -> str:
    """A small count in words ("two"), a larger one in figures."""
    return ("two", "three", "four", "five")[n - 2] if 2 <= n <= 5 else f"{n:,}"


def judging_interval(judged: list) -> str:
    """How many steps apart a probe's judgements were, in words: one count ("1,000"), or the
    least and the most ("1,000 to 2,000") when a run continued at another interval. A last
    judgement nearer its predecessor (a run that ended between two) does not count."""
    steps = [j["step"] for j in judged]
    if not steps:
        raise ValueError("no judgements: the probe's record is empty")
    gaps = [b - a for a, b in zip([0, *steps], steps)]
    if len(gaps) > 1 and gaps[-1] < gaps[-2]:
        gaps = gaps[:-1]
    least, most = min(gaps), max(gaps)
    return f"{least:,}" if least == most else f"{least:,} to {most:,}"


#: How far (in share) two readings of the same real patches may differ and still be "about the
#: same" in :func:`yardstick_sentence`.
YARDSTICK_TOLERANCE = 0.05


def yardstick_sentence(probe: dict, real_neg: float, real_pos: float) -> str:
    """Whether this run's EfficientNet reads the real round-trip patches as the published
    GAN's judge did (``real_called_pos_*`` of the probe's last judgement), in words
    (Markdown): ``real_neg`` and ``real_pos`` are this run's shares called IDC+."""
    last = probe["judged"][-1]
    then = last["real_called_pos_neg"], last["real_called_pos_pos"]
    gap = max(abs(then[0] - real_neg), abs(then[1] - real_pos))
    if round(gap, 9) <= YARDSTICK_TOLERANCE:  # (rounded: 0.96 - 1.01 is 0.0500000000000004)
        return (
            f"This run's EfficientNet reads real tissue after the round trip about as that one "
            f"did: it calls {real_neg:.0%} of the real IDC− and {real_pos:.0%} of the real IDC+ "
            "patches IDC+ (the label-fidelity section below)."
        )
    return (
        f"This run's EfficientNet reads the same kind of patches differently: after the round "
        f"trip it calls {real_neg:.0%} of the real IDC− and {real_pos:.0%} of the real IDC+ "
        f"patches IDC+ (the label-fidelity section below), where the one that judged the published "
        f"GAN called {then[0]:.0%} and {then[1]:.0%}. Both were trained by the same "
        f"recipe and seed (that one on {probe['machine']}); neither saw blurred patches in "
        "training, and how far a blur moves their scores is not fixed by the recipe. So read a "
        "generator's shares only beside the real shares given by the same classifier: the "
        "table above beside its own real column, this chapter's synthetic rows beside its own "
        "real rows."
    )


def continuation_sentence(results: dict) -> str:
    """What the chosen variant's last steps bought, in words (Markdown), when it continues
    another variant's run (:data:`STARTS_FROM`): its judgement where it left the source's curve
    and at its last judgement, on the same sampler. ``""`` otherwise."""
    chosen = results["chosen"]
    source = STARTS_FROM.get(chosen)
    judged = results["variants"][chosen]["judged"]
    start = diffusion.GenConfig.from_dict(results["variants"][chosen]["config"]).anneal_from
    before = [r for r in judged if r["step"] <= start]
    if source is None or not before or judged[-1]["step"] <= start:
        return ""
    a, b = before[-1], judged[-1]

    def kid(r):
        return f"{r['kid_neg_x1000']:.0f} (IDC−) and {r['kid_pos_x1000']:.0f} (IDC+)"

    def worse(r):
        return max(r["kid_neg_x1000"], r["kid_pos_x1000"])

    bar = results["bars"]["kid_x1000_max"]
    lowered = "lowered" if worse(b) < worse(a) else "did not lower"
    reach = "within" if worse(b) <= bar else "still above"
    change = (
        f"Its own steps {lowered} the worse class's KID, which is {reach} the bar of {bar:.0f}."
    )

    return (
        f"`{chosen}` is `{source}` continued: its first {start:,} steps are `{source}`'s, and "
        f"from there its KID went from {kid(a)} to {kid(b)} at step {b['step']:,}, with the "
        f"same sampler and the same validation patches. {change}"
    )


def schedule_sentence(cfg: diffusion.GenConfig, steps: int) -> str:
    """How the learning rate and the weight average changed along ``steps`` training steps, in
    words (Markdown), from ``cfg`` (:func:`idc_utils.training.diffusion.schedule_at`)."""
    if not cfg.anneal_steps or steps <= cfg.anneal_from:
        return (
            f"The learning rate stays at {cfg.lr:g} and the average's decay at {cfg.ema:g} "
            "for every step."
        )
    memory, later = round(1 / (1 - cfg.ema)), round(1 / (1 - cfg.anneal_ema))
    if steps >= cfg.anneal_from + cfg.anneal_steps:
        fall = f"over the next {cfg.anneal_steps:,} steps it falls to 0 along half a cosine"
    else:
        last = diffusion.schedule_at(cfg, steps - 1)[0]
        fall = (
            f"it falls along half a cosine meant to reach 0 after {cfg.anneal_steps:,} steps, "
            f"and is {last:.2g} at the last of these {steps:,}"
        )
    return (
        f"The learning rate is {cfg.lr:g} for the first {cfg.anneal_from:,} steps. Then it is "
        f"**annealed**: {fall}, and the average keeps {cfg.anneal_ema:g} of itself at each "
        f"step instead of {cfg.ema:g}, so that it remembers about {later:,} steps instead of "
        f"{memory:,}. A constant rate keeps the weights moving around a good solution; "
        "smaller steps and a longer average settle them. The dashed line in the figure marks "
        "where annealing begins."
    )


def origin_sentence(gen: diffusion.Generator, source: str) -> str:
    """Where the chapter's generator came from, in words (Markdown), from
    :func:`committed_or_trained`'s ``source``."""
    minutes = f"{gen.seconds / 60:.0f}"
    if source.startswith("published"):
        return (
            f"That many steps took {minutes} minutes of training on the machine that made this "
            "generator, too long for a chapter. It was therefore trained once, with the same "
            "code, by `tools/generator_study.py` (the study below) on this run's training "
            "patients, and published with the book together with its configuration, its curve, "
            "the fingerprint of the patches it learned from and the command that made it. The "
            "chapter loaded it because all of them match this run; another split or setting "
            "trains its own, and says why."
        )
    return (
        f"This generator was trained in this run, in {minutes} minutes. (The sample book loads "
        "a published one instead, made by `tools/generator_study.py`, when its configuration, "
        "steps and training patches match the run.)"
    )
