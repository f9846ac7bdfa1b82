"""Which diffusion generator makes tissue? A measured answer, on the book's own split; and the
generator the sample book loads.

Each *variant* (``idc_utils.studies.generator_study.VARIANTS``) is the profile's generator with
some settings changed. Every variant trains for ``--steps`` steps on the training patients of a
run's ``split.csv``, with the validation patients choosing its weights, and every ``--every``
steps it is judged on validation patients: KID against real validation tissue at the
generator's size, and the share of its patches the run's EfficientNet calls IDC+. Test patients
are never used. The output (JSON) holds those curves, the training curves, the configurations,
the machine and the command.

``--keep`` copies the chosen variant's generator (the weights that sample, its state, curve and
configuration, the fingerprint of the patches it trained on, and this command) to
``book/data/generator/``: the synthetic-patches chapter loads it when its split and settings
match, instead of training for an hour on a CPU.

    IDC_DATA_DIR=../shared/idc-sample .venv/bin/python tools/generator_study.py \\
        --run runs/sample --steps 6000 --every 1000 [--variants eps v ...] [--keep]

Checkpoints go to ``<run>/generator_study/<variant>/``; a stopped study resumes there. A variant
that continues another (``STARTS_FROM``: ``v_fold_anneal`` continues ``v_fold``'s 12,000 steps)
starts from that variant's checkpoint only while it stands at or before the step where the two
part; run each with its own command (``book/data/generator_study.json`` stores them), not all
variants at one ``--steps``, or the source trains past that step and the continuation starts
from nothing (the same generator, hours later).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from idc_utils.book import machine
from idc_utils.chapters import profiles
from idc_utils.data import split
from idc_utils.studies import generator_study as study
from idc_utils.training import diffusion, generator


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--run", default="runs/sample", help="run folder: its split and EfficientNet")
    ap.add_argument("--profile", default="sample")
    ap.add_argument("--steps", type=int, default=None, help="default: the profile's")
    ap.add_argument("--every", type=int, default=1000, help="judge every this many steps")
    ap.add_argument("--per-class", type=int, default=200, help="patches judged per class")
    ap.add_argument("--variants", nargs="+", default=list(study.VARIANTS))
    ap.add_argument("--sweep-steps", type=int, nargs="+", default=[8, 20], help="DDIM steps")
    ap.add_argument("--sweep-guidance", type=float, nargs="+", default=[0.0, 1.0, 2.0])
    ap.add_argument("--out", default="book/data/generator_study.json")
    ap.add_argument("--keep", action="store_true", help="copy the chosen generator to --keep-to")
    ap.add_argument("--keep-to", default=str(study.COMMITTED_DIR))
    args = ap.parse_args()

    run_dir = Path(args.run)
    p = profiles.profile_params(args.profile)
    steps = args.steps or p["gen_train_steps"]
    ds, df = split.dataset_with_split(None, run_dir / "split.csv")
    parts = {s: df[df.split == s] for s in ("train", "val")}
    judge = study.StudyJudge.for_run(run_dir, ds.images, df, p, args.per_class)
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {"variants": {}}
    results.setdefault("cpu_ref", []).append({"at": "start", **(machine.cpu_reference() or {})})
    base = diffusion.config_from_params(p)
    command = " ".join(["python", *map(shlex.quote, sys.argv)])
    for name in args.variants:
        cfg = study.variant_config(base, name)
        before = results["variants"].get(name, {})
        # a resumed variant keeps the judgements made before it stopped
        same = "config" in before and (
            diffusion.GenConfig.from_dict(before["config"]).to_dict() == cfg.to_dict()
        )
        judged = before.get("judged", []) if same else []
        # a variant that repeats another's first steps starts from its checkpoint
        judged += study.start_from_source(
            name,
            cfg,
            run_dir / "generator_study",
            {n: v.get("judged", []) for n, v in results["variants"].items()},
        )

        def on_checkpoint(gen, judged=judged, size=cfg.image_size, name=name):
            if gen.steps % args.every and gen.steps != steps:
                return
            t0 = time.perf_counter()
            sampler = study.JUDGING_SAMPLER
            row = judge(gen, size, **sampler)
            row.update(step=gen.steps, train_seconds=gen.seconds, **sampler)
            judged[:] = [r for r in judged if r["step"] != gen.steps] + [row]
            print(f"[{name}] {row} (judged in {time.perf_counter() - t0:.0f} s)", flush=True)

        t0 = time.perf_counter()
        gen = generator.train_generator(
            ds.images,
            parts["train"],
            cfg,
            run_dir / "generator_study" / name,
            steps=steps,
            val_rows=parts["val"],
            checkpoint_every=args.every,
            restart=False,
            on_checkpoint=on_checkpoint,
        )
        results["variants"][name] = {
            "changes": study.VARIANTS[name][0],
            "config": cfg.to_dict(),
            "steps": gen.steps,
            "best_step": gen.best_step,
            "train_seconds": gen.seconds,
            "wall_seconds": time.perf_counter() - t0,
            "judged": judged,
            "history": gen.history.to_dict("records"),
            # resumed or not, this command trains the same generator from nothing (a resumed
            # run ends where an uninterrupted one does)
            "command": command,
        }
        results.update(
            machine=machine.machine_description(),
            profile=args.profile,
            split=str(run_dir / "split.csv"),
            training_patches_digest=split.training_patches_digest(parts["train"]),
            bars={
                "kid_x1000_max": study.KID_BAR_X1000,
                "called_pos_min": study.CALLED_POS_MIN,
                "called_neg_max": study.CALLED_NEG_MAX,
            },
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1, default=float))
    chosen = study.choose_variant(
        {n: v["judged"] for n, v in results["variants"].items() if v["judged"]}
    )
    results["chosen"] = chosen
    print(f"chosen on validation patients: {chosen}", flush=True)
    # the sampler's settings, tried on the chosen variant's published weights (kept from an
    # earlier run of the study when that judged the same weights)
    cfg = study.variant_config(base, chosen)
    gen = generator.load_generator(run_dir / "generator_study" / chosen)
    earlier = results.get("sampling", {})
    if (earlier.get("variant"), earlier.get("step")) != (chosen, gen.best_step):
        rows = []
        for diffusion_steps in args.sweep_steps:
            for guidance in args.sweep_guidance:
                sampler = {"diffusion_steps": diffusion_steps, "guidance": guidance}
                row = judge(gen, cfg.image_size, **sampler)
                row.update(sampler)
                rows.append(row)
                print(f"[sampling] {row}", flush=True)
        results["sampling"] = {
            "variant": chosen,
            "step": gen.best_step,
            "rows": rows,
            "command": command,
        }
    # chosen again from the stored rows every time: the rule may have changed since they were
    # judged (the chapter's budget caps the steps)
    results["sampling"].update(
        chosen=study.choose_sampling(results["sampling"]["rows"], study.MAX_SAMPLER_STEPS),
        max_steps=study.MAX_SAMPLER_STEPS,
    )
    print(f"sampler chosen on validation patients: {results['sampling']['chosen']}")
    if "blurred_tissue" not in results:
        train_rows = parts["train"]
        results["blurred_tissue"] = study.blurred_tissue_kid(
            ds.images[train_rows["i"].to_numpy()],
            train_rows["label"].to_numpy(),
            judge.val_small(cfg.image_size),
            judge.labels,
            judge.embed,
            per_class=args.per_class,
            seed=p["seed"],
        )
        print(f"[blurred tissue] {results['blurred_tissue']}", flush=True)
    results["cpu_ref"].append({"at": "end", **(machine.cpu_reference() or {})})
    out.write_text(json.dumps(results, indent=1, default=float))
    if args.keep:
        dest = generator.commit_checkpoint(
            run_dir / "generator_study" / chosen,
            parts["train"],
            args.keep_to,
            command=results["variants"][chosen]["command"],
            study=str(out),
        )
        print(f"kept in {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
