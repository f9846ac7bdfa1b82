"""The prose stays true and teachable: every number a reader sees is glued from the run or listed
with its source in book/ledger/, chapter references are links that carry the right number, every
chapter has three kinds of exercise (none repeated), every figure is numbered, captioned, described
for a screen reader and referred to, every glossary term is linked where the book first uses it,
and every chapter ends with further reading."""

from __future__ import annotations

import json
import re

import pytest
from conftest import ROOT

from idc_utils.book import notebooks, prose
from idc_utils.chapters import source

# ---- the checker itself, on tiny pages it makes ------------------------------------------------


def test_numbers_in_code_maths_roles_and_names_are_not_prose_numbers():
    text = (
        "The sample holds 28% IDC+ patches {glue:text}`n_patches` and `size = 50`.\n"
        "$$\\mathrm{recall} = \\frac{TP}{TP + FN} + 1$$ and $x_0$ {cite}`ho2020ddpm`.\n"
        "EfficientNetB0 is not Lite0; KID x1000; 3×3 convolutions; Adam at 1e-3.\n"
        "```python\nepochs = 12\n```\n"
        "1. a list item\n"
    )
    prose_text, problems = prose.plain_prose(text)
    assert prose.numbers_in(prose_text) == ["28%", "3", "3", "1e-3"]
    assert problems == []


def test_a_chapter_named_without_a_link_or_with_the_wrong_number_is_a_problem():
    chapter_of = {"05_cnn_baseline.ipynb": 5}.get
    _, problems = prose.plain_prose("As chapter 4 showed.", chapter_of)
    assert problems and "link" in problems[0]
    text, problems = prose.plain_prose("As [chapter 5](05_cnn_baseline.ipynb) showed.", chapter_of)
    assert problems == [] and prose.numbers_in(text) == []
    _, problems = prose.plain_prose("As [chapter 4](05_cnn_baseline.ipynb) showed.", chapter_of)
    assert problems == ["[chapter 4](05_cnn_baseline.ipynb) is chapter 5"]


def test_a_directive_body_is_prose_and_its_options_are_not(tmp_path):
    text = "```{exercise} Recall 0.97\n:label: ex-a\n:class: explain-why\n\nWhy 12 epochs?\n```"
    prose_text, _ = prose.plain_prose(text)
    assert prose.numbers_in(prose_text) == ["0.97", "12"]


def tiny_book(tmp_path, page_text, ledger=None):
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nparts:\n  - caption: C\n    numbered: true\n"
        "    chapters:\n      - file: notebooks/01_a\n"
    )
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "intro.md").write_text("# Intro\n\nSee [chapter 1](../notebooks/01_a).\n")
    (tmp_path / "notebooks").mkdir()
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": page_text}]}
    (tmp_path / "notebooks" / "01_a.ipynb").write_text(json.dumps(nb))
    if ledger is not None:
        (tmp_path / "book" / "ledger").mkdir()
        for stem, entries in ledger.items():
            lines = "".join(f'"{k}": "{v}"\n' for k, v in entries.items())
            (tmp_path / "book" / "ledger" / f"{stem}.yml").write_text(lines)
    return tmp_path


def test_an_unsourced_number_fails_and_a_ledgered_one_passes(tmp_path):
    root = tiny_book(tmp_path, "The paper reports 0.9558 and we saw 0.94.")
    problems = prose.unsourced_numbers(root)
    assert len(problems) == 2 and "'0.9558'" in problems[0] and "01_a.yml" in problems[0]
    root = tiny_book(
        tmp_path / "b",
        "The paper reports 0.9558 and we saw 0.94.",
        {"01_a": {"0.9558": "the paper, AUC"}, "_common": {"0.94": "x"}},
    )
    assert prose.unsourced_numbers(root) == []


def test_a_stale_ledger_entry_fails(tmp_path):
    root = tiny_book(tmp_path, "No numbers now.", {"01_a": {"0.9558": "the paper"}})
    assert prose.unsourced_numbers(root) == [
        "book/ledger/01_a.yml: '0.9558' is no longer in notebooks/01_a.ipynb"
    ]


def test_the_glossary_terms_and_their_first_use(tmp_path):
    root = tiny_book(tmp_path, "The {term}`AUC` ranks; recall counts.")
    (root / "book" / "intro.md").write_text("# Intro\n\nNo terms here.\n")
    (root / "book" / "glossary.md").write_text(
        "# Glossary\n\n```{glossary}\nAUC\n  Area under the ROC curve.\n\n"
        "recall\n  The share of positives found.\n\nembedding\n  A vector.\n```\n"
    )
    assert prose.glossary_terms(root) == ["AUC", "recall", "embedding"]
    assert prose.first_uses_unlinked(root) == [
        "notebooks/01_a.ipynb names 'recall' first in the book: link it with {term}",
        "the glossary's 'embedding' is used by no page",
    ]


def test_show_source_displays_the_package_code_with_its_file_and_lines():
    block = source.source_block(source.source_block)
    assert "from `idc_utils/chapters/source.py`, lines" in block
    assert "def source_block(" in block
    assert block.count("python\n") == 1 and block.rstrip().endswith("\n```")
    with_fences = source.source_block(
        test_show_source_displays_the_package_code_with_its_file_and_lines
    )
    assert re.search(r"\n`{4,}python\n", with_fences)  # longer than the code's own backticks


# ---- the book ---------------------------------------------------------------------------------

CHAPTERS = notebooks.chapter_notebooks(ROOT)


def test_every_number_in_the_prose_is_glued_or_sourced_and_chapter_links_are_right():
    problems = prose.unsourced_numbers(ROOT)
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:60])


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_figure_is_numbered_captioned_described_and_referred_to(path):
    problems = prose.figure_problems(path)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_has_three_kinds_of_exercise_and_written_answers_to_why(path):
    found = prose.exercises(path)
    assert len(found) >= 3, f"{path.name}: {len(found)} exercises"
    kinds = {k for e in found for k in e.kinds}
    assert kinds == set(prose.EXERCISE_KINDS), f"{path.name}: kinds {sorted(kinds)}"
    for e in found:
        assert e.label.startswith("ex-") and e.kinds, f"{path.name}: {e.title!r} needs a kind"
        if "explain-why" in e.kinds:
            assert e.answer_words >= 25, f"{e.label}: the solution answers 'why' in words"


def test_no_exercise_is_repeated_across_the_book():
    found = [e for path in CHAPTERS for e in prose.exercises(path)]
    labels = [e.label for e in found]
    assert len(labels) == len(set(labels)), sorted(x for x in labels if labels.count(x) > 1)

    def words(e):
        return set(re.findall(r"[a-z]{4,}", e.text.lower()))

    for i, a in enumerate(found):
        for b in found[i + 1 :]:
            shared = len(words(a) & words(b)) / max(1, min(len(words(a)), len(words(b))))
            assert shared < 0.7, f"{a.label} ({a.chapter}) and {b.label} ({b.chapter}) ask alike"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_ends_with_further_reading(path):
    keys = prose.further_reading(path)
    assert keys, f"{path.name}: a 'Further reading' section with at least one {{cite}}"
    bib = (ROOT / "book" / "references.bib").read_text()
    for key in (k.strip() for group in keys for k in group.split(",")):
        assert re.search(r"@\w+\{" + re.escape(key) + ",", bib), f"{path.name}: {key} not in bib"


def test_every_glossary_term_is_linked_where_the_book_first_uses_it():
    assert len(prose.glossary_terms(ROOT)) >= 20
    problems = prose.first_uses_unlinked(ROOT)
    assert not problems, "\n".join(problems)


def test_the_teaching_samples_figures_in_the_dataset_page_are_its_manifests():
    """book/dataset.md writes the sample's size by hand (a page cannot glue from a chapter): its
    ledger names the manifest as the source, and here the manifest confirms each figure."""
    import collections
    import statistics

    from idc_utils.data import sample

    rows = sample.read_manifest()
    per_patient = collections.Counter(r.patient_id for r in rows)
    counts = sorted(per_patient.values())
    share = sum(r.label for r in rows) / len(rows)
    page = (ROOT / "book" / "dataset.md").read_text()
    expected = (
        f"{len(rows):,} real patches from {len(per_patient)} patients",
        f"({100 * share:.1f}%",
        f"median of {statistics.median(counts):.0f} patches (from {counts[0]} to {counts[-1]};",
        f"patient {per_patient.most_common(1)[0][0]}, is",
    )
    for text in expected:
        assert text in " ".join(page.split()), text


def test_a_figure_cell_that_displays_a_table_too_is_a_problem(tmp_path):
    meta = {
        "mystnb": {
            "figure": {"name": "fig-a", "caption": "A figure."},
            "image": {"alt": "a bar chart of the two classes' patch counts"},
        }
    }
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": "As {numref}`fig-a` shows."},
        {"cell_type": "code", "metadata": meta, "source": "display(table)\nplt.show()"},
    ]
    path = tmp_path / "01_a.ipynb"
    path.write_text(json.dumps({"cells": cells}))
    [problem] = prose.figure_problems(path)
    assert "displays something else too" in problem
    cells[1]["source"] = "fig = plot()\nplt.show()"
    path.write_text(json.dumps({"cells": cells}))
    assert prose.figure_problems(path) == []
