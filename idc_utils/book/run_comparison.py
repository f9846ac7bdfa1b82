"""Two runs of the book, number by number: the values each executed chapter glued into its prose
(``myst_nb.glue``), compared as the book shows them. Two machines, two float paths (for example
``TF_ENABLE_ONEDNN_OPTS=0``) or two versions of the code give two run folders; this says which of
the book's numbers they share and which moved, chapter by chapter. A published run carries its
numbers in ``glued.json`` (:func:`publish_with_numbers`), so a reader who fetched it can compare
their own build with the published book's.

A value is compared by its text: the markdown of a glued sentence, else the plain text of a
number or string, with runs of spaces and line breaks counted as one space. A glued figure has
no text to compare, so it is counted apart, as not compared. A value whose name starts with
``timing_`` (:data:`TIMING_PREFIX`) measures the machine's speed, which differs between any two
builds: it is shown when it moved, but not counted, so two builds that agree on everything else
compare the same. The report also says which trained models the runs share (the same weights)
and where each of the others was trained, as its card records it: numbers read from models trained
apart may move."""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path

from idc_utils.chapters.published_run import GLUED_FILE, publish_run
from idc_utils.core.wording import many
from idc_utils.models import cards

#: a glued name that starts with this is a speed measurement (a rate, a time): it differs between
#: any two builds, so a comparison shows it but does not count it
TIMING_PREFIX = "timing_"

#: the text forms of a glued value, in the order the book prefers them
_TEXT_FORMS = ("text/markdown", "text/plain")


class RunComparisonError(ValueError):
    """A run folder or an executed chapter that cannot be compared (the message names it)."""


def glued_values(notebook: Path) -> dict[str, str | None]:
    """The values an executed notebook glued, by name, as the book shows them (the markdown of a
    glued sentence, else the plain text); ``None`` for a glued figure, which has no text form."""
    try:
        nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunComparisonError(
            f"{notebook}: not a readable executed notebook ({e}); run its chapter again"
        ) from None
    values: dict[str, str | None] = {}
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            record = out.get("metadata", {}).get("scrapbook")
            if not record or "name" not in record:
                continue
            # glue(display=False) keys its forms "application/papermill.record/text/plain";
            # glue(display=True) keeps them plain ("text/plain")
            prefix, data = record.get("mime_prefix", ""), out.get("data", {})
            forms = {k[len(prefix) :]: v for k, v in data.items() if k.startswith(prefix)}
            kind = next((k for k in _TEXT_FORMS if k in forms), None)
            if kind is None or any(k.startswith("image/") for k in forms):
                values[record["name"]] = None
                continue
            text = forms[kind]
            text = "".join(text) if isinstance(text, list) else str(text)
            values[record["name"]] = _unquoted(text) if kind == "text/plain" else text
    return values


def _unquoted(text: str) -> str:
    """A glued string's text form is its repr (``'0.946'``): the string itself, as shown."""
    if text[:1] in "'\"":
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text
        if isinstance(value, str):
            return value
    return text


def _spaced(text: str) -> str:
    return " ".join(text.split())


@dataclass
class ChapterComparison:
    """One chapter in two runs: how many values both glued as text (``compared``), those that
    differ (name: (first, second)), the speed measurements (``timings``, not counted; those that
    moved in ``timings_differ``, those glued in one run only in ``timings_one_run``), the figures
    (not compared), and the other names glued in one run only."""

    chapter: str
    compared: int
    differ: dict[str, tuple[str, str]] = field(default_factory=dict)
    timings: list[str] = field(default_factory=list)
    timings_differ: dict[str, tuple[str, str]] = field(default_factory=dict)
    timings_one_run: dict[str, str] = field(default_factory=dict)  # name: "first" or "second"
    figures: list[str] = field(default_factory=list)
    only_first: list[str] = field(default_factory=list)
    only_second: list[str] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return not (self.differ or self.only_first or self.only_second)


@dataclass
class ModelComparison:
    """The trained models of two runs, by their cards: those saved in the same file (the card's
    SHA-256 of the ``.keras`` file), those in different files (name: (where the first was trained,
    where the second was)), and those in one run only (name: "first" or "second"). ``without``
    names a run that has no cards while the other has; ``shared_folder`` is set when both sides
    read the same cards (a run and the ``glued.json`` inside it), which then say nothing."""

    same: list[str] = field(default_factory=list)
    apart: dict[str, tuple[str, str]] = field(default_factory=dict)
    one_run: dict[str, str] = field(default_factory=dict)
    without: list[str] = field(default_factory=list)
    shared_folder: Path | None = None


def models_folder(run: Path) -> Path:
    """Where a run's model cards are: ``models/`` in the run, or beside a ``glued.json``."""
    run = Path(run)
    return (run.parent if run.is_file() else run) / "models"


def model_origins(run: Path) -> dict[str, tuple[str, str]]:
    """``{model: (SHA-256 of its file, where it was trained)}`` from the model cards in a run
    (:func:`models_folder`; the cards alone suffice, the ``.keras`` files may be left out), read
    by :func:`idc_utils.models.cards.read_card`. Other JSON there (a job file, say: no card's
    fields, no model beside it) is passed over; a card without a file hash of its own (an
    ensemble's) is left out; an unreadable card beside a ``.keras`` model is an error naming it."""
    origins = {}
    for path in sorted(models_folder(run).glob("*.json")):
        model = path.with_suffix(".keras")
        try:
            card = cards.read_card(model)
        except (cards.CardError, OSError, UnicodeDecodeError) as e:
            if not model.exists():
                continue  # not a card: a job file, say
            raise RunComparisonError(
                f"{path}: not a readable model card ({e}); train or fetch the model again"
            ) from None
        if "model_sha256" in card:
            where = cards.trained_on(card)
            if card.get("device"):
                where += f"; {card['device']}"
            origins[path.stem] = (card["model_sha256"], where)
    return origins


def compare_models(first: Path, second: Path) -> ModelComparison | None:
    """The two runs' models (:func:`model_origins`); ``None`` when neither has any."""
    folder_a, folder_b = models_folder(first), models_folder(second)
    a, b = model_origins(first), model_origins(second)
    if not (a or b):
        return None
    if folder_a.resolve() == folder_b.resolve():
        return ModelComparison(shared_folder=folder_a)
    if not (a and b):
        return ModelComparison(without=[str(second if a else first)])
    both = [k for k in a if k in b]
    return ModelComparison(
        same=[k for k in both if a[k][0] == b[k][0]],
        apart={k: (a[k][1], b[k][1]) for k in both if a[k][0] != b[k][0]},
        one_run={
            **{k: "first" for k in a if k not in b},
            **{k: "second" for k in b if k not in a},
        },
    )


@dataclass
class RunComparison:
    first: Path
    second: Path
    chapters: list[ChapterComparison]
    only_first: list[str]  # chapters executed in one run only
    only_second: list[str]
    sources: tuple[str, str] = ("executed chapters", "executed chapters")
    models: ModelComparison | None = None

    @property
    def same(self) -> bool:
        return not (self.only_first or self.only_second) and all(c.same for c in self.chapters)

    def counts(self) -> tuple[int, int]:
        """(values the same, values compared), over the chapters both runs executed; speed
        measurements are not counted."""
        compared = sum(c.compared for c in self.chapters)
        return compared - sum(len(c.differ) for c in self.chapters), compared


def chapters_folder(run: Path) -> Path | None:
    """Where a run's executed chapters are (``run/notebooks``, or ``run`` if it holds them)."""
    run = Path(run)
    for folder in (run / "notebooks", run):
        if folder.is_dir() and any(folder.glob("*.ipynb")):
            return folder
    return None


def run_values(run: Path) -> tuple[dict[str, dict[str, str | None]], str]:
    """``({chapter: {name: value}}, where they came from)`` of a run: read from its executed
    chapters (:func:`chapters_folder`), else from a published ``glued.json`` (``run`` may also
    name that file)."""
    run = Path(run)
    folder = chapters_folder(run)
    if folder is not None:
        values = {p.stem: glued_values(p) for p in sorted(folder.glob("*.ipynb"))}
        return values, "executed chapters"
    published = run if run.is_file() else run / GLUED_FILE
    if not published.is_file():
        raise RunComparisonError(
            f"{run}: no executed chapters here, and no {GLUED_FILE} (a run folder holds its "
            "chapters in notebooks/; build one with python -m idc_utils book --run-dir ..., or "
            "fetch a published run with python -m idc_utils run fetch --run-dir ...)"
        )
    try:
        values = json.loads(published.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunComparisonError(f"{published}: not readable ({e}); fetch it again") from None
    well_formed = isinstance(values, dict) and all(
        isinstance(chapter, dict) and all(v is None or isinstance(v, str) for v in chapter.values())
        for chapter in values.values()
    )
    if not well_formed:
        raise RunComparisonError(
            f"{published}: not the {GLUED_FILE} of a published run ({{chapter: {{name: text}}}}); "
            "fetch it again"
        )
    return values, f"published {GLUED_FILE}"


def publish_with_numbers(run_dir: Path, out: Path) -> list[str]:
    """Publish the run (:func:`idc_utils.chapters.published_run.publish_run`) with the numbers
    of its executed chapters in ``glued.json``, for ``run compare`` on another machine. A run
    without executed chapters publishes its files only; a damaged chapter is an error."""
    if chapters_folder(run_dir) is None:
        return publish_run(run_dir, out)
    values, _ = run_values(run_dir)
    text = json.dumps(values, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
    return publish_run(run_dir, out, extra={GLUED_FILE: text})


def compare_chapter(name: str, va: dict, vb: dict) -> ChapterComparison:
    """One chapter's glued values in two runs (name: value, ``None`` for a figure). A speed
    measurement (:data:`TIMING_PREFIX`) is set apart wherever it is glued: moved, or glued in one
    run only, it is shown but not counted."""
    timings = [k for k in {**va, **vb} if k.startswith(TIMING_PREFIX)]
    one_run = {k: "first" if k in va else "second" for k in timings if (k in va) != (k in vb)}
    va = {k: v for k, v in va.items() if k not in one_run}
    vb = {k: v for k, v in vb.items() if k not in one_run}
    both = [k for k in va if k in vb]
    no_text = [k for k in both if va[k] is None or vb[k] is None]
    figures = [k for k in no_text if k not in timings]
    texts = [k for k in both if k not in no_text]
    moved = {k: (va[k], vb[k]) for k in texts if _spaced(va[k]) != _spaced(vb[k])}
    return ChapterComparison(
        chapter=name,
        compared=len([k for k in texts if k not in timings]),
        differ={k: v for k, v in moved.items() if k not in timings},
        timings=timings,
        timings_differ={k: v for k, v in moved.items() if k in timings},
        timings_one_run=one_run,
        figures=figures,
        only_first=[k for k in va if k not in vb],
        only_second=[k for k in vb if k not in va],
    )


def compare_runs(first: Path, second: Path) -> RunComparison:
    """Every chapter executed in either run; those in both compared value by value."""
    (a, source_a), (b, source_b) = run_values(first), run_values(second)
    names_a, names_b = set(a), set(b)
    chapters = [compare_chapter(name, a[name], b[name]) for name in sorted(names_a & names_b)]
    return RunComparison(
        Path(first),
        Path(second),
        chapters,
        sorted(names_a - names_b),
        sorted(names_b - names_a),
        sources=(source_a, source_b),
        models=compare_models(first, second),
    )


def _where_they_differ(x: str, y: str, width: int = 56) -> tuple[str, str]:
    """Both texts, shortened to a window that starts a little before their first difference."""
    x, y = _spaced(x), _spaced(y)
    first = next((k for k, (a, b) in enumerate(zip(x, y)) if a != b), min(len(x), len(y)))
    start = max(0, first - 12)

    def window(t: str) -> str:
        part = t[start : start + width]
        return ("…" if start else "") + part + ("…" if start + width < len(t) else "")

    return window(x), window(y)


def _models_report(models: ModelComparison | None) -> list[str]:
    """Which models the runs share: the numbers read from models trained apart may move."""
    if models is None:
        return []
    if models.shared_folder is not None:
        return [f"  models: both sides read the cards in {models.shared_folder}, so not compared"]
    lines = [
        f"  models: {run} has no model cards (copy its models/*.json to compare them)"
        for run in models.without
    ]
    if models.same:
        lines.append(f"  models in the same file in both runs: {', '.join(models.same)}")
    if models.apart:
        lines.append("  models in different files (the numbers read from them may move):")
        for name, (x, y) in models.apart.items():
            lines.append(f"      {name}: {x} -> {y}")
    for name, side in models.one_run.items():
        lines.append(f"  model {name}: in the {side} run only")
    return lines


def comparison_report(comp: RunComparison) -> str:
    """The comparison as text: a line per chapter, then each value that moved, both ways."""
    (source_a, source_b) = comp.sources
    lines = [f"glued values of {comp.first} ({source_a}) against {comp.second} ({source_b}):"]
    if source_a == source_b != "executed chapters":
        lines.append("  (both sides are published numbers: neither is a build of your own)")
    lines += _models_report(comp.models)
    for c in comp.chapters:
        one_run = len(c.only_first) + len(c.only_second)
        verdict = [
            f"{len(c.differ)} differ" if c.differ else "none differ" if one_run else "the same"
        ]
        if one_run:
            verdict.append(f"{one_run} glued in one run only")
        if c.timings:
            verdict.append(many(len(c.timings), "speed measurement") + " not counted")
        if c.figures:
            verdict.append(many(len(c.figures), "figure") + " not compared")
        lines.append(f"  {c.chapter}: {c.compared} compared, {', '.join(verdict)}")
        for name, (x, y) in c.differ.items():
            x, y = _where_they_differ(x, y)
            lines.append(f"      {name}: {x} -> {y}")
        for name, (x, y) in c.timings_differ.items():
            x, y = _where_they_differ(x, y)
            lines.append(f"      {name} (speed, not counted): {x} -> {y}")
        for name, side in c.timings_one_run.items():
            lines.append(f"      {name} (speed, not counted): glued in the {side} run only")
        for side, names in (("first", c.only_first), ("second", c.only_second)):
            if names:
                lines.append(f"      glued in the {side} run only: {', '.join(names)}")
    for names, run in ((comp.only_first, comp.second), (comp.only_second, comp.first)):
        for name in names:
            lines.append(f"  {name}: not executed in {run}")
    same, compared = comp.counts()
    lines.append(f"{same} of {compared} values the same" + ("" if comp.same else "; see above"))
    return "\n".join(lines)
