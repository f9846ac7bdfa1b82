"""A probe, not a chapter's code: can an adversarial generator (a GAN,
:mod:`idc_utils.training.adversarial`) make tissue on a CPU where the diffusion generator did
not? Judged exactly as chapter 10 and ``tools/generator_study.py`` judge the diffusion
generator, on the book's own split.

The diffusion generator the sample book loads (``book/data/generator/``) trained for 18,000
steps, two hours on a 2-core CPU, and its samples still score KID x 1000 of about 450 (IDC+) and
550-640 (IDC-) against real validation tissue, where the bar is 150. This script trains a GAN
instead, for ``--steps`` steps, on the training patients' patches at the same 32 px (both classes
with one class-conditional GAN, or one class with ``--label``), checkpointing into ``--out-dir``
(a later call with more steps resumes, and continues the record of judgements), and every
``--every`` steps judges its moving-average generator with the study's judge
(``generator_study.judge_generator``):

- KID x 1000 of 150 synthetic patches per class against real validation patches of that class
  (the same 1,000 validation patches, embedder, subsets and seed as the study's judge);
- the share of them the run's EfficientNet calls IDC+ (label fidelity), beside the share of the
  real validation patches it calls IDC+ after the same round trip.

    IDC_DATA_DIR=../shared/idc-sample .venv/bin/python tools/gan_probe.py \\
        --run runs/sample --steps 10000 --every 1000 --label 0 --out runs/gan_probe_neg.json

Test patients are never used. The output (JSON) holds the judgements, the settings, the
machine and the command (run ``../shared/cpu_ref.py`` beside it for a timing's reference);
``--grid`` writes 16 patches per class judged as a PNG.

The defaults of ``--steps``, ``--gen-widths``, ``--anneal-*`` and ``--restart-*`` are the
sample profile's ``gan_*`` parameters (``--restart-steps 0``: no warm restart;
``--restart-steps 12000,1500``: two, back to back, at ``--restart-lr`` each or, given as
``1e-4,5e-5``, at one rate each).
``--publish book/data/gan`` then copies the finished GAN's sampling weights there, with its
configuration, loss curve, training-patch digest and the commands that trained it
(``adversarial.commit_gan``), and copies ``--out`` and ``--grid`` beside that folder as
``gan_probe.json`` and ``gan_probe.png``: the record of judgements the chapter shows is then the
published GAN's own. The sample book's chapter 10 loads it. It refuses settings that
the chapter's parameters would not load. Training needs a built sample run (``make book``: its
split and EfficientNet judge), and on a processor of another make it trains a somewhat different
GAN. ``--check book/data/gan`` needs nothing else: it checks that this machine draws the
published GAN's reference patches as the machine that published it did.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from idc_utils.book import machine
from idc_utils.chapters import profiles
from idc_utils.data import split
from idc_utils.studies import generator_study as study
from idc_utils.training import adversarial


def earlier_judgements(out: Path, out_dir: Path, cfg: adversarial.GanConfig) -> tuple:
    """``(judgements, commands)`` of the earlier calls whose checkpoint this one resumes (the
    same configuration), up to that checkpoint's step: a longer run continues their record."""
    state_path = out_dir / "gan.json"
    if not (out.exists() and state_path.exists()):
        return [], []
    earlier = json.loads(out.read_text())
    resumed = json.loads(state_path.read_text())
    mine, steps = cfg.to_dict(), resumed["steps"]
    alike = adversarial.trains_alike
    if not (
        alike(earlier["settings"]["config"], mine, steps) and alike(resumed["config"], mine, steps)
    ):
        return [], []
    kept = [j for j in earlier["judged"] if j["step"] <= resumed["steps"]]
    return kept, [*earlier.get("earlier_commands", []), earlier["command"]]


def gan_config(args, size: int, seed: int) -> adversarial.GanConfig:
    """The GAN's configuration from the command line (a ``ValueError`` if it is inconsistent)."""
    return adversarial.GanConfig(
        image_size=size,
        gen_widths=tuple(int(w) for w in args.gen_widths.split(",")),
        critic_widths=tuple(int(w) for w in args.critic_widths.split(",")),
        batch_size=args.batch,
        label=args.label,
        seed=seed,
        anneal_from=args.anneal_from,
        anneal_steps=args.anneal_steps,
        restart_from=args.restart_from,
        restart_steps=args.restart_steps,
        restart_lr=args.restart_lr,
    )


def comma_separated(convert, example: str):
    """An argparse type: one value, or several separated by commas (then a tuple), each read by
    ``convert``; ``example`` completes the error message ("give step counts, e.g. ...")."""

    def parse(text: str):
        try:
            values = tuple(convert(v) for v in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: give {example}") from None
        return values[0] if len(values) == 1 else values  # one value as the profile writes it

    return parse


def main() -> int:
    p = profiles.profile_params("sample")
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--run", default="runs/sample", help="a run folder with split.csv and models/")
    ap.add_argument("--steps", type=int, default=p["gan_train_steps"])
    ap.add_argument("--every", type=int, default=1000, help="steps between judgements")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--label", type=int, choices=(0, 1), default=None, help="one class only")
    widths = ",".join(str(w) for w in p["gan_widths"])
    ap.add_argument("--gen-widths", default=widths, help="one upsampling block each")
    ap.add_argument("--critic-widths", default="32,64,128,256")
    ap.add_argument(
        "--anneal-from",
        type=int,
        default=p["gan_anneal_from"],
        help="step the learning rates start to fall",
    )
    ap.add_argument(
        "--anneal-steps",
        type=int,
        default=p["gan_anneal_steps"],
        help="to 0 over this many (0: never)",
    )
    ap.add_argument(
        "--restart-from",
        type=int,
        default=p["gan_restart_from"],
        help="the first warm restart: the rates jump back at this step (at or after annealing's "
        "end)",
    )
    ap.add_argument(
        "--restart-steps",
        type=comma_separated(int, "step counts, e.g. 12000,1500"),
        default=p["gan_restart_steps"],
        help="and fall to 0 again over this many (0: no restart); several, comma-separated: "
        "cycles back to back",
    )
    ap.add_argument(
        "--restart-lr",
        type=comma_separated(float, "rates, e.g. 1e-4,5e-5"),
        default=p["gan_restart_lr"],
        help="the rate each cycle jumps back to: one for all, or one each",
    )
    ap.add_argument("--per-class", type=int, default=150)
    ap.add_argument("--out-dir", default=None, help="checkpoints (default: beside --out)")
    ap.add_argument("--out", default="runs/gan_probe.json")
    ap.add_argument("--grid", default=None, help="a PNG of the last judgement's patches")
    ap.add_argument("--publish", default=None, help="copy the finished GAN here for the book")
    ap.add_argument(
        "--check",
        default=None,
        metavar="FOLDER",
        help="only check that this machine draws a published GAN's reference patches",
    )
    args = ap.parse_args()
    if args.check:
        return check(Path(args.check))

    run = Path(args.run)
    seed, size = int(p["seed"]), int(p["gen_image_size"])
    try:
        cfg = gan_config(args, size, seed)
    except ValueError as e:
        raise SystemExit(
            f"{e} (the warm restarts default to the profile's gan_restart_*: pass "
            "--restart-steps 0 for none)"
        ) from None
    zero = [k for k in range(args.steps) if adversarial.learning_rate(cfg, k) == 0]
    if zero:
        raise SystemExit(
            f"--steps {args.steps}: from step {zero[0]} the learning rates are 0 (annealing "
            "or the last warm restart has ended): lengthen --anneal-steps or --restart-steps, "
            "add a cycle to --restart-steps, or shorten --steps"
        )
    if args.publish and (cfg, args.steps) != (
        adversarial.config_from_params(p),
        p["gan_train_steps"],
    ):
        raise SystemExit(
            "--publish: the sample book's chapter 10 would not load this GAN (its settings "
            "differ from the profile's gan_* parameters); change idc_utils/profiles.yml first"
        )
    classes = cfg.classes
    ds, df = split.dataset_with_split(None, run / "split.csv")
    train = df[df.split == "train"].sort_values("i")
    # the study's judge: the same validation patches, embedder and classifier
    judge_study = study.StudyJudge.for_run(run, ds.images, df, p, args.per_class)
    out = Path(args.out)
    out_dir = Path(args.out_dir) if args.out_dir else out.with_suffix("")
    judged, commands = earlier_judgements(out, out_dir, cfg)
    results = {
        "command": shlex.join([sys.executable.rsplit("/", 1)[-1], *sys.argv]),
        "machine": machine.machine_description(),
        "settings": {**vars(args), "config": cfg.to_dict()},
        "bars": {"kid_x1000_max": study.KID_BAR_X1000},
        "earlier_commands": commands,
        "judged": judged,
    }

    def judge(gan: adversarial.GanGenerator) -> None:
        if gan.steps % args.every and gan.steps != args.steps:
            return
        last = gan.history.iloc[-1]
        row = {"step": gan.steps, "train_seconds": round(gan.seconds, 1)}
        row.update(loss_critic=last["loss_critic"], loss_generator=last["loss_generator"])
        row.update(judge_study(gan, size, classes=classes))
        print(json.dumps(row), flush=True)
        results["judged"].append(row)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1))
        if args.grid:
            from PIL import Image

            rows = [np.concatenate(list(gan.sample(16, c, 2 * seed + c)), 1) for c in classes]
            Image.fromarray(np.concatenate(rows, 0)).save(args.grid)

    state = out_dir / "gan.json"
    start = json.loads(state.read_text())["steps"] if state.exists() else 0
    gan = adversarial.train_gan(
        ds.images,
        train,
        cfg,
        out_dir,
        steps=args.steps,
        checkpoint_every=args.every,
        on_checkpoint=judge,
    )
    if args.publish:
        publish(args, results, out_dir, train, trained_here=gan.steps - start)
    return 0


def check(folder: Path) -> int:
    """Draw the reference patches of the GAN published in ``folder`` and compare them with the
    ones stored when it was published: 0 when they agree up to float noise
    (``adversarial.REFERENCE_TOLERANCE``), else 1."""
    try:
        drift = adversarial.drift_from_reference(folder)
    except FileNotFoundError as e:
        raise SystemExit(f"--check: {e}") from None
    agrees = adversarial.reference_agrees(drift)
    print(
        f"{folder}: largest difference {drift['max_grey_levels']} grey levels, "
        f"{drift['share_differing']:.4%} of values differ, from the patches drawn on "
        f"{drift['drawn_on'] or 'an unrecorded machine'}; this machine: "
        f"{machine.machine_description()}. "
        + ("The same patches, up to float noise." if agrees else "NOT the same patches.")
    )
    return 0 if agrees else 1


def publish(args, results: dict, out_dir: Path, train, trained_here: int) -> None:
    """The finished GAN into ``args.publish``, and its record of judgements (``--out``) and
    grid (``--grid``) beside it as ``gan_probe.json`` and ``gan_probe.png``."""
    import shutil

    out = Path(args.out)
    if not out.exists() or json.loads(out.read_text())["judged"][-1]["step"] != args.steps:
        raise SystemExit(f"--publish: {out} holds no judgement of step {args.steps}")
    dest = adversarial.commit_gan(
        out_dir,
        train,
        args.publish,
        command=results["command"],
        machine=results["machine"],
        steps_trained_by_command=trained_here,
        earlier_commands=results["earlier_commands"],
    )
    shutil.copyfile(out, dest.parent / "gan_probe.json")
    if args.grid:
        shutil.copyfile(args.grid, dest.parent / "gan_probe.png")
    print(f"published in {dest}, its record in {dest.parent / 'gan_probe.json'}")


if __name__ == "__main__":
    sys.exit(main())
