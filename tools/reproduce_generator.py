"""Does this machine give the published generator's numbers? A check any reader can run, on the
sample's split, against the record of ``tools/generator_study.py``
(``book/data/generator_study.json``, made on the machine named in it):

1. **training**: the chosen variant trained again from nothing for ``--steps`` steps (its first
   12,000 are its source's), its loss compared with the record at every logged step, and its
   judgement at the last step with the record's judgement at that step;
2. **the published generator** (``book/data/generator/``) judged again as the chapter samples it,
   compared with the study's row for that setting;
3. **blurred real tissue**: the KID yardstick recomputed (the embedder and the data alone).

KIDs depend only on the generator, the embedder and the seed; the shares called IDC+ depend on
the run's EfficientNet too, which every machine trains for itself. The result is appended to
``--out`` (one entry per machine and command), with the machine, ``../shared/cpu_ref.py``'s
figures and the command.

    IDC_DATA_DIR=../shared/idc-sample .venv/bin/python tools/reproduce_generator.py \\
        --run runs/sample --steps 2000

The run folder needs the sample book's split and EfficientNet (``make book`` makes them); a
split other than the study's is refused: its numbers would differ for that reason alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from idc_utils.book import machine
from idc_utils.chapters import profiles
from idc_utils.data import split
from idc_utils.studies import generator_study as study
from idc_utils.studies import reproduction
from idc_utils.training import diffusion, generator


def records(table) -> list[dict]:
    """A comparison table as JSON rows (its index as columns)."""
    return json.loads(table.reset_index().to_json(orient="records"))


def repeat_training(ds, parts, record, judge, cfg, steps, every, out_dir) -> dict:
    """Part 1: train ``cfg`` from nothing for ``steps`` steps and compare with the record."""
    chosen = record["variants"][record["chosen"]]
    judged = {}

    def on_checkpoint(gen):
        if gen.steps == steps:
            judged.update(judge(gen, cfg.image_size, **study.JUDGING_SAMPLER))

    t0 = time.perf_counter()
    gen = generator.train_generator(
        ds.images,
        parts["train"],
        cfg,
        out_dir,
        steps=steps,
        val_rows=parts["val"],
        checkpoint_every=every,
        restart=True,
        on_checkpoint=on_checkpoint,
    )
    seconds = time.perf_counter() - t0
    losses = reproduction.compare_histories(chosen["history"], gen.history.to_dict("records"))
    out = {
        "steps": steps,
        "train_seconds": gen.seconds,
        "wall_seconds": seconds,
        "losses": reproduction.summary(losses),
        "loss_rows": records(losses),
    }
    at_step = [j for j in chosen["judged"] if j["step"] == steps]
    if at_step:
        table = reproduction.compare_judgements(at_step[0], judged)
        out.update(judgement=records(table), judged_at_step=steps)
    else:
        out["judgement"] = f"the record has no judgement at step {steps}: none compared"
    return out


def repeat_published(record, judge, cfg, steps, train_rows) -> dict:
    """Part 2: the published generator judged again at the chapter's sampler setting."""
    gen = generator.load_committed(study.COMMITTED_DIR, cfg, steps, train_rows)
    sampler = record["sampling"]["chosen"]
    table = reproduction.compare_judgements(
        study.chosen_sampling_row(record), judge(gen, cfg.image_size, **sampler)
    )
    return {"sampler": sampler, "judgement": records(table)}


def repeat_blurred(ds, parts, record, judge, cfg, per_class, seed) -> dict:
    """Part 3: the KID of blurred real training tissue, recomputed."""
    train_rows = parts["train"]
    again = study.blurred_tissue_kid(
        ds.images[train_rows["i"].to_numpy()],
        train_rows["label"].to_numpy(),
        judge.val_small(cfg.image_size),
        judge.labels,
        judge.embed,
        per_class=per_class,
        seed=seed,
    )
    table = reproduction.compare_blurred_tissue(record["blurred_tissue"], again)
    return {"summary": reproduction.summary(table), "rows": records(table)}


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--run", default="runs/sample", help="run folder: its split and EfficientNet")
    ap.add_argument("--profile", default="sample")
    ap.add_argument("--record", default="book/data/generator_study.json")
    ap.add_argument("--steps", type=int, default=2000, help="training steps to repeat")
    ap.add_argument(
        "--per-class", type=int, default=None, help="default: the record's (its command's)"
    )
    ap.add_argument("--skip-training", action="store_true", help="parts 2 and 3 only")
    ap.add_argument("--out", default="book/data/reproduction.json")
    args = ap.parse_args()

    run_dir = Path(args.run)
    record = json.loads(Path(args.record).read_text())
    p = profiles.profile_params(args.profile)
    ds, df = split.dataset_with_split(None, run_dir / "split.csv")
    parts = {s: df[df.split == s] for s in ("train", "val")}
    digest = split.training_patches_digest(parts["train"])
    if digest != record["training_patches_digest"]:
        raise SystemExit(
            f"{run_dir / 'split.csv'} is not the split {args.record} was made on (training "
            "patches differ): build the sample book with the shared sample, or pass --run"
        )
    if args.per_class is None:  # judged as the record was, or the KIDs differ for that alone
        command = shlex.split(record["sampling"]["command"])
        args.per_class = int(command[command.index("--per-class") + 1])
    cfg = study.variant_config(diffusion.config_from_params(p), record["chosen"])
    judge = study.StudyJudge.for_run(run_dir, ds.images, df, p, args.per_class)
    entry = {
        "date": dt.date.today().isoformat(),
        "machine": machine.machine_description(),
        "cpu_ref": [{"at": "start", **(machine.cpu_reference() or {})}],
        "command": " ".join(["python", *map(shlex.quote, sys.argv)]),
        "record_machine": record["machine"],
        "variant": record["chosen"],
    }
    entry["published"] = repeat_published(
        record, judge, cfg, int(p["gen_train_steps"]), parts["train"]
    )
    print("[published]", json.dumps(entry["published"]["judgement"], indent=1), flush=True)
    entry["blurred_tissue"] = repeat_blurred(
        ds, parts, record, judge, cfg, args.per_class, int(p["seed"])
    )
    print("[blurred tissue]", entry["blurred_tissue"]["summary"], flush=True)
    if not args.skip_training:
        with tempfile.TemporaryDirectory() as tmp:
            entry["training"] = repeat_training(
                ds, parts, record, judge, cfg, args.steps, args.steps, Path(tmp)
            )
        print("[training]", entry["training"]["losses"], flush=True)
        print("[training]", json.dumps(entry["training"]["judgement"], indent=1), flush=True)
    entry["cpu_ref"].append({"at": "end", **(machine.cpu_reference() or {})})
    out = Path(args.out)
    checks = json.loads(out.read_text())["checks"] if out.exists() else []
    out.write_text(json.dumps({"checks": [*checks, entry]}, indent=1) + "\n")
    print(f"appended to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
