"""The idc command line: ``python -m idc_utils <command>`` (thin: parses, then calls modules).

book      run every chapter under a profile and render the Jupyter Book
train     train one of the book's models outside the notebooks (one machine or several)
predict   score patches with a saved model, write a CSV
app       launch the Gradio demo
publish   push the built book to a gh-pages branch
data      check a dataset, download the Kaggle set, or copy the teaching sample out of it
run       publish a run's models, split and metrics, fetch a published run (start anywhere),
          or compare the glued numbers of two runs
dicom     run a local DICOMweb server, or write a patient's region as a DICOM slide
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _parse_value(text: str):
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def cmd_book(args) -> int:
    from idc_utils.book import runner, site

    overrides = {k: _parse_value(v) for k, v in (args.param or [])}
    if not args.build_only:
        executed = runner.run_chapters(
            args.profile,
            args.data_dir,
            overrides,
            only=args.only,
            run_dir=args.run_dir,
            force=args.force,
        )
        used = executed[0].parents[1] if executed else None
        if used is not None and "experiments" in used.parts and not args.run_dir:
            print(
                f"an experiment: its executed chapters are in {used / 'notebooks'}; the book's "
                "pages are not rebuilt from it"
            )
            return 0
    if not args.no_build:
        site.build_html(
            args.profile, run_dir=args.run_dir, full=args.force, edition=args.edition, out=args.out
        )
    return 0


def cmd_train(args) -> int:
    """What chapters 5 and 6 do, from the command line: train a model on a run's split."""
    from idc_utils.training import config, devices, loop  # no TensorFlow yet

    device = devices.configure_device(strategy=args.strategy)  # the strategy must come first
    from idc_utils.chapters import profiles, run_folder
    from idc_utils.core import seeding
    from idc_utils.data import split

    params = profiles.profile_params(args.profile)
    params.update({k: _parse_value(v) for k, v in (args.param or [])})
    run = run_folder.Run.for_profile(args.profile, args.run_dir)
    seeding.seed_everything(int(params["seed"]))
    ds, df = split.dataset_with_split(args.data_dir, run.split_csv)
    cfg = (
        config.TrainConfig.for_cnn(params)
        if args.model == "cnn"
        else config.TrainConfig.for_transfer(params)
    )
    print(f"training {args.model} on {device.description}", flush=True)
    res = loop.fit(
        cfg,
        ds.images,
        df,
        run.models,
        args.name or args.model,
        data_fingerprint=ds.fingerprint,
        device=device,
        force=args.force,
        log=lambda m: print(m, flush=True),
    )
    print(f"saved {res.model_path}")
    return 0


def cmd_publish(args) -> int:
    from idc_utils.book import publish, site
    from idc_utils.core import paths

    root = paths.project_root()
    html = site.edition_output(root, args.edition) / "_build" / "html"
    run = root / "runs" / args.profile
    if (run / "split.csv").exists():  # beside the pages: readers start from chapter 7 with it
        from idc_utils.book.run_comparison import publish_with_numbers

        publish_with_numbers(run, html / "run")
    publish.publish(html, remote=args.remote, branch=args.branch)
    return 0


def cmd_data_check(args) -> int:
    from idc_utils.data import dataset

    ds = dataset.load_dataset(args.path, progress=True)
    print(ds.report())
    if args.problems and len(ds.problems):
        ds.problems.to_csv(args.problems, index=False)
        print(f"problems written to {args.problems}")
    return 0


def _kaggle_download(dest: str | None) -> Path | None:
    """The Kaggle set downloaded with kagglehub (kept under ``dest``; a second call finds it
    there): its folder of patient folders. ``None`` when kagglehub is missing (said on stderr)."""
    from idc_utils.data import sources

    try:
        import kagglehub
    except ImportError:
        print("kagglehub is not installed: pip install 'idc-book[data]'", file=sys.stderr)
        return None
    if dest:
        os.environ["KAGGLEHUB_CACHE"] = os.path.abspath(dest)
    print(
        f"downloading {sources.KAGGLE_DATASET} (about 3.1 GB) with kagglehub; this needs a Kaggle "
        "account (~/.kaggle/kaggle.json or KAGGLE_USERNAME/KAGGLE_KEY) and network",
        flush=True,
    )
    return sources.find_dataset_root(kagglehub.dataset_download(sources.KAGGLE_DATASET))


def cmd_data_download(args) -> int:
    root = _kaggle_download(args.dest)
    if root is None:
        return 2
    print("done. Use it with:\n  export IDC_DATA_DIR=" + str(root))
    return 0


def cmd_data_sample(args) -> int:
    """Copy the teaching sample out of the Kaggle set (``--from``, or downloaded into ``--dest``
    when a file is still needed), every file checked; print the IDC_DATA_DIR to use."""
    from idc_utils.data import sample

    entries = sample.read_manifest()
    out = Path(args.out).expanduser().resolve()
    source = args.source
    if source is None and sample.to_copy(out, entries):
        source = _kaggle_download(args.dest)
        if source is None:
            return 2
        print(f"the full set (277,524 patches, PROFILE=full): IDC_DATA_DIR={source}")
    report = sample.make_sample(source, out, entries)
    print(report.summary())
    print("Use the teaching sample with:\n  export IDC_DATA_DIR=" + str(out))
    return 0


def cmd_predict(args) -> int:
    from idc_utils.serving import predict

    return predict.predict_to_csv(
        args.model,
        args.input,
        args.out,
        threshold=args.threshold,
        batch_size=args.batch_size,
        strict=args.strict,
        progress=not args.quiet,
        use_context=args.context,
    )


def cmd_app(args) -> int:
    from idc_utils.serving.app import ui

    model = args.model or str(ui.find_default_model())
    print(
        f"starting the demo with {model} on http://{args.host}:{args.port or 7860} "
        "(research and teaching only; Ctrl+C stops it)"
    )
    ui.launch(model, host=args.host, port=args.port, share=args.share, data_dir=args.data_dir)
    return 0


def cmd_dicom_serve(args) -> int:
    import signal
    import time

    from idc_utils.serving.orthanc import start_orthanc

    def stop(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)  # `kill` stops Orthanc too
    server = start_orthanc(args.storage, args.port)
    print(
        f"Orthanc {server.version()} on {server.url} (this machine only; no TLS, no "
        f"authentication: a teaching server)\n  DICOMweb: {server.dicomweb_url}\n  storage: "
        f"{server.workdir}\nCtrl+C stops it."
    )
    try:
        while server.process.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def cmd_dicom_slide(args) -> int:
    import tempfile

    from idc_utils.data import dataset, dicom_slide, mosaic
    from idc_utils.serving import dicomweb

    ds = dataset.load_dataset(args.data_dir, progress=False)
    rows = mosaic.patient_rows(ds.manifest, args.patient)
    image, _ = mosaic.mosaic(ds.patches(rows), rows["x"], rows["y"])
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="idc-slide-"))
    series = dicom_slide.write_slide(image, out, patient_id=args.patient, levels=args.levels)
    print(
        f"patient {args.patient}: {image.shape[1]}x{image.shape[0]} px, {len(series.paths)} "
        f"levels written to {out}"
    )
    if args.url:
        n = dicomweb.store(dicomweb.connect(args.url), series.paths)
        print(f"stored {n} instances on {args.url}: study {series.study_uid}")
    return 0


def _run_arguments(parser, run_dir_help: str, param_help: str) -> None:
    """The options ``book`` and ``train`` share: profile, data, run folder, parameters."""
    parser.add_argument("--profile", default=os.environ.get("PROFILE", "sample"))
    parser.add_argument(
        "--data-dir", default=None, help="dataset folder or zip (default: $IDC_DATA_DIR)"
    )
    parser.add_argument("--run-dir", default=None, help=run_dir_help)
    parser.add_argument(
        "-p", "--param", nargs=2, action="append", metavar=("KEY", "VALUE"), help=param_help
    )


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command, each with its own ``--help``."""
    p = argparse.ArgumentParser(
        prog="python -m idc_utils",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)
    for add in (_book, _train, _predict, _app, _publish, _data, _run, _dicom):
        add(sub)
    return p


def _book(sub) -> None:
    b = sub.add_parser("book", help="run the chapters with papermill and build the book")
    _run_arguments(
        b,
        "run folder (default: runs/<profile>)",
        "override a profile parameter for every chapter that declares it",
    )
    b.add_argument("--only", nargs="+", help="run only chapters whose names start with these")
    b.add_argument(
        "--force",
        action="store_true",
        help="run every chapter and retrain every model, even when nothing changed",
    )
    b.add_argument("--no-build", action="store_true", help="run the chapters, skip the HTML")
    b.add_argument(
        "--edition",
        choices=["teacher", "student"],
        default="teacher",
        help="student: the exercises without their solutions (in _build/student/)",
    )
    b.add_argument(
        "--out",
        default=None,
        help="build the HTML in OUT/_build/html (default: here; students: _build/student)",
    )
    b.add_argument("--build-only", action="store_true", help="render already-executed chapters")
    b.set_defaults(func=cmd_book)


def _train(sub) -> None:
    t = sub.add_parser(
        "train", help="train the CNN or the EfficientNet on a run's split (chapters 5/6)"
    )
    t.add_argument("--model", choices=["cnn", "efficientnet"], default="efficientnet")
    _run_arguments(
        t, "run folder with split.csv (default: runs/<profile>)", "override a profile parameter"
    )
    t.add_argument(
        "--name", default=None, help="file name of the model (default: the --model value)"
    )
    t.add_argument(
        "--strategy",
        choices=["auto", "mirrored", "multiworker"],
        default="auto",
        help="multiworker: tf.distribute.MultiWorkerMirroredStrategy over $TF_CONFIG's workers",
    )
    t.add_argument(
        "--force", action="store_true", help="retrain even if an identical model is saved"
    )
    t.set_defaults(func=cmd_train)


def _predict(sub) -> None:
    pr = sub.add_parser("predict", help="score patches with a saved model -> CSV")
    pr.add_argument(
        "--model",
        required=True,
        help="runs/<profile>/models/<name>.keras (its .json card beside it)",
    )
    pr.add_argument(
        "--input", required=True, nargs="+", help="Kaggle-layout folder, folder of images, or files"
    )
    pr.add_argument(
        "--out", required=True, help="CSV: path,patient_id,x,y,label,prob,pred,error,note"
    )
    pr.add_argument(
        "--threshold", type=float, default=None, help="override the model card's threshold"
    )
    pr.add_argument("--batch-size", type=int, default=128)
    pr.add_argument("--strict", action="store_true", help="exit 1 if any file could not be scored")
    pr.add_argument("--quiet", action="store_true", help="no progress bar")
    pr.add_argument(
        "--context",
        action="store_true",
        help="use neighbouring patches of the same patient (Kaggle names give their position)",
    )
    pr.set_defaults(func=cmd_predict)


def _app(sub) -> None:
    ap = sub.add_parser("app", help="launch the Gradio demo (127.0.0.1 by default)")
    ap.add_argument(
        "--model", default=None, help="a .keras model (default: the best model of the latest run)"
    )
    ap.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default: loopback only)"
    )
    ap.add_argument(
        "--port", type=int, default=None, help="port (default: 7860 or the next free one)"
    )
    ap.add_argument(
        "--share", action="store_true", help="also open a public gradio.live link (off by default)"
    )
    ap.add_argument(
        "--data-dir",
        default=None,
        help="dataset folder for example patches (default: $IDC_DATA_DIR)",
    )
    ap.set_defaults(func=cmd_app)


def _publish(sub) -> None:
    pu = sub.add_parser("publish", help="push the built book to a gh-pages branch (ghp-import)")
    pu.add_argument("--remote", default="origin", help="git remote to push to (default: origin)")
    pu.add_argument(
        "--branch", default="gh-pages", help="branch GitHub Pages serves (default: gh-pages)"
    )
    pu.add_argument("--edition", choices=["teacher", "student"], default="teacher")
    pu.add_argument(
        "--profile", default="sample", help="whose run goes beside the pages in run/ (sample)"
    )
    pu.set_defaults(func=cmd_publish)


def _data(sub) -> None:
    d = sub.add_parser("data", help="check or download the dataset; make the teaching sample")
    dsub = d.add_subparsers(dest="data_command", required=True)
    c = dsub.add_parser("check", help="scan, validate and cache a dataset; report problems")
    c.add_argument("path", nargs="?", default=None, help="folder or zip (default: $IDC_DATA_DIR)")
    c.add_argument("--problems", help="write the problem list to this CSV")
    c.set_defaults(func=cmd_data_check)
    dl = dsub.add_parser("download", help="download the Kaggle set with kagglehub")
    dl.add_argument("--dest", default="data", help="where kagglehub keeps it (default: ./data)")
    dl.set_defaults(func=cmd_data_download)
    sa = dsub.add_parser(
        "sample",
        help="copy the book's 8,035-patch sample out of the Kaggle set, every file checked",
    )
    sa.add_argument(
        "--from",
        dest="source",
        metavar="DOWNLOAD",
        default=None,
        help="the Kaggle download: its folder (any level) or its .zip (default: download it "
        "with kagglehub into --dest, unless --out already holds the whole sample)",
    )
    sa.add_argument(
        "--out", default="data/idc-sample", help="the sample's folder (default: ./data/idc-sample)"
    )
    sa.add_argument(
        "--dest", default="data", help="without --from: where kagglehub keeps it (default: ./data)"
    )
    sa.set_defaults(func=cmd_data_sample)


def cmd_run_publish(args) -> int:
    from idc_utils.book.run_comparison import publish_with_numbers

    files = publish_with_numbers(Path(args.run_dir), Path(args.out))
    print(f"published {len(files)} files of {args.run_dir} in {args.out} (with SHA256SUMS)")
    return 0


def cmd_run_fetch(args) -> int:
    import time

    from idc_utils.chapters.published_run import fetch_run
    from idc_utils.core.paths import display_path

    run_dir = Path(args.run_dir or f"runs/{args.profile}")
    t0 = time.perf_counter()
    rep = fetch_run(args.source, run_dir, overwrite=args.overwrite)
    print(
        f"fetched {len(rep.downloaded)} files ({rep.bytes / 1e6:.1f} MB), kept {len(rep.kept)} "
        f"already there, every SHA-256 checked, in {time.perf_counter() - t0:.1f} s: "
        f"{display_path(run_dir)}"
    )
    print("chapters 7-11 now run without training, e.g. make book, or papermill with -p run_dir")
    return 0


def cmd_run_compare(args) -> int:
    from idc_utils.book.run_comparison import RunComparisonError, compare_runs, comparison_report

    try:
        comp = compare_runs(Path(args.first), Path(args.second))
    except RunComparisonError as e:
        print(f"run compare: {e}", file=sys.stderr)
        return 2  # as diff does: 0 the same, 1 different, 2 trouble
    print(comparison_report(comp))
    return 0 if comp.same else 1


def _run(sub) -> None:
    r = sub.add_parser(
        "run", help="publish a run, fetch a published one (start anywhere), or compare two"
    )
    rsub = r.add_subparsers(dest="run_command", required=True)
    pu = rsub.add_parser(
        "publish", help="copy a run's split, models, metrics, numbers (glued.json) + SHA256SUMS"
    )
    pu.add_argument("--run-dir", default="runs/sample", help="the run (default: runs/sample)")
    pu.add_argument("--out", required=True, help="folder to publish, e.g. _build/html/run")
    pu.set_defaults(func=cmd_run_publish)
    fe = rsub.add_parser("fetch", help="download a published run, checking every SHA-256")
    fe.add_argument(
        "--from", dest="source", required=True, help="its address (the folder with SHA256SUMS)"
    )
    fe.add_argument("--profile", default="sample", help="the run's profile (default: sample)")
    fe.add_argument("--run-dir", default=None, help="where to (default: runs/<profile>)")
    fe.add_argument("--overwrite", action="store_true", help="replace files of the run that differ")
    fe.set_defaults(func=cmd_run_fetch)
    co = rsub.add_parser(
        "compare",
        help="the book's glued numbers in two runs, by chapter (exit 1: differ; 2: error)",
    )
    co.add_argument(
        "first", help="a run folder (its executed chapters are in notebooks/, else its glued.json)"
    )
    co.add_argument(
        "second", help="another, e.g. built on another machine, or a published run's glued.json"
    )
    co.set_defaults(func=cmd_run_compare)


def _dicom(sub) -> None:
    dc = sub.add_parser("dicom", help="a local DICOMweb server; slides as DICOM")
    dcsub = dc.add_subparsers(dest="dicom_command", required=True)
    sv = dcsub.add_parser("serve", help="run Orthanc with DICOMweb on 127.0.0.1 until Ctrl+C")
    sv.add_argument("--port", type=int, default=8042, help="HTTP port (default 8042)")
    sv.add_argument("--storage", default=None, help="storage folder (default: a temporary one)")
    sv.set_defaults(func=cmd_dicom_serve)
    sl = dcsub.add_parser(
        "slide", help="write a patient's rebuilt region as a DICOM whole-slide series"
    )
    sl.add_argument("--patient", default="14082", help="patient id (default 14082)")
    sl.add_argument("--data-dir", default=None, help="dataset (default: $IDC_DATA_DIR)")
    sl.add_argument("--levels", type=int, default=3, help="pyramid levels (default 3)")
    sl.add_argument("--out", default=None, help="folder for the files (default: temporary)")
    sl.add_argument("--url", default=None, help="store it on this DICOMweb server (STOW-RS)")
    sl.set_defaults(func=cmd_dicom_slide)


def main(argv=None) -> int:
    from idc_utils.core.errors import DataError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        if os.environ.get("IDC_DEBUG"):
            raise
        from idc_utils.book.notebooks import ChapterError
        from idc_utils.chapters.published_run import PublishedRunError
        from idc_utils.serving.orthanc import OrthancError

        known = (ChapterError, OrthancError, PublishedRunError, FileNotFoundError, ValueError)
        if isinstance(exc, known):
            print(f"error: {exc}", file=sys.stderr)
            return 1
        raise
