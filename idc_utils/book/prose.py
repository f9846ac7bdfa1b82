"""The book's prose, read the way its tests check it: the pages of ``_toc.yml`` with their chapter
numbers, the numbers a reader sees in the prose (each must be glued from the run or listed with
its source in ``book/ledger/``), chapter references (written as links, so that a renumbered
chapter cannot leave a stale "chapter 6"), exercises and their kinds, figures and glossary terms.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from idc_utils.core.paths import project_root

#: where the sources of hand-written numbers are listed, one YAML file per page (its stem), plus
#: ``_common.yml`` for the few that any page may use (the paper's figures, the dataset's size)
LEDGER = Path("book") / "ledger"

#: an exercise's ``:class:`` names one of these kinds; every chapter has all three
EXERCISE_KINDS = ("predict-then-run", "change-and-interpret", "explain-why")


@dataclass(frozen=True)
class Page:
    """A page of the book: its path relative to the root and, in a numbered part, its number."""

    rel: str
    number: int | None

    @property
    def stem(self) -> str:
        return Path(self.rel).stem


def toc_pages(root: Path | None = None) -> list[Page]:
    """Every page of ``_toc.yml`` in reading order; chapters of numbered parts are numbered
    continuously across parts, as the built book numbers them."""
    root = root or project_root()
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    pages = [Page(_with_suffix(root, toc["root"]), None)]
    number = 0
    for part in toc.get("parts", []):
        for entry in part.get("chapters", []):
            if part.get("numbered"):
                number += 1
            shown = number if part.get("numbered") else None
            pages.append(Page(_with_suffix(root, entry["file"]), shown))
    return pages


def _with_suffix(root: Path, name: str) -> str:
    for suffix in (".ipynb", ".md"):
        if (root / (name + suffix)).exists():
            return name + suffix
    return name + (".ipynb" if name.startswith("notebooks/") else ".md")


def markdown_blocks(path: Path) -> list[tuple[str, str]]:
    """(where, text) of a page's prose: each markdown cell of a notebook, or a whole .md page."""
    if path.suffix == ".ipynb":
        nb = json.loads(path.read_text())
        return [
            (f"{path.name} cell {k}", "".join(c["source"]))
            for k, c in enumerate(nb["cells"])
            if c["cell_type"] == "markdown"
        ]
    return [(path.name, path.read_text())]


_FENCE = re.compile(r"^(`{3,}|~{3,})(.*)$")
_MATH_BLOCK = re.compile(r"\$\$.*?\$\$", re.S)
_MATH_INLINE = re.compile(r"(?<![\\$])\$(?:[^$\n]|\n(?!\n))+\$")
_ROLE = re.compile(r"\{[\w:-]+\}`[^`]*`")
_CODE = re.compile(r"`+[^`]*`+")
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
_URL = re.compile(r"https?://\S+")
_LINK = re.compile(r"!?\[([^\]]*)\]\(([^)\s]*)[^)]*\)")
_LIST_NUMBER = re.compile(r"^(\s*)\d+[.)]\s", re.M)
_OPTION = re.compile(r"^\s*:[\w-]+:.*$", re.M)
_COLON_FENCE = re.compile(r"^\s*:{3,}.*$", re.M)
_NUMBER = re.compile(
    r"(?<![A-Za-z]-)(?<![\w.])\d+(?:[.,]\d+)*(?:e[-+]?\d+)?(?:%|x(?!\w))?(?!\w)(?![.,]\d)"
)
_CHAPTER_WORD = re.compile(r"\b[Cc]hapters?\s+\d")


def _without_code_fences(text: str) -> str:
    """Fenced code blocks removed; a directive's fence line is removed but its body is prose."""
    out, fence = [], None
    for line in text.splitlines():
        m = _FENCE.match(line.strip())
        if fence is None and m:
            info = m.group(2).strip()
            fence = (m.group(1), info.startswith("{"))
            if fence[1]:  # a directive: its title is prose
                out.append(re.sub(r"^\{[\w:-]+\}\s*", "", info))
            continue
        if fence is not None and m and line.strip().startswith(fence[0]) and not m.group(2).strip():
            fence = None
            continue
        if fence is None or fence[1]:
            out.append(line)
    return "\n".join(out)


def plain_prose(text: str, chapter_of=None) -> tuple[str, list[str]]:
    """The prose a reader sees with code, maths, roles (glue, cite, term, numref), options, URLs
    and link targets removed; returns it and the problems with its chapter links.

    A link to a chapter (``[chapter 5](05_cnn_baseline.ipynb)``) must carry that chapter's number:
    ``chapter_of(target)`` gives it (None: the target is not a chapter); such a link's numbers are
    checked here, not counted as prose numbers."""
    problems = []
    text = _COMMENT.sub(" ", text)
    text = _without_code_fences(text)
    text = _MATH_BLOCK.sub(" ", text)
    text = _ROLE.sub(" ", text)
    text = _CODE.sub(" ", text)
    text = _MATH_INLINE.sub(" ", text)

    def link(m):
        label, target = m.group(1), m.group(2)
        number = chapter_of(target) if chapter_of else None
        if number is None:
            return label
        given = [int(n) for n in re.findall(r"\d+", label)]
        if given and given != [number]:
            problems.append(f"[{label}]({target}) is chapter {number}")
        return " "

    text = _LINK.sub(link, text)
    text = _URL.sub(" ", text)
    text = _TAG.sub(" ", text)
    text = _OPTION.sub(" ", text)
    text = _COLON_FENCE.sub(" ", text)
    text = _LIST_NUMBER.sub(r"\1", text)
    for m in _CHAPTER_WORD.finditer(text):
        context = text[max(0, m.start() - 20) : m.end() + 20].replace("\n", " ")
        problems.append(f"'...{context}...': write a chapter reference as a link to the chapter")
    return text, problems


def numbers_in(text: str) -> list[str]:
    """The number tokens of prose (``28%``, ``0.9558``, ``277,524``, ``1e-3``); digits inside a
    word (EfficientNetB0, Lite0, x1000) are names, not numbers."""
    return [m.group(0).rstrip(".,") for m in _NUMBER.finditer(text)]


def chapter_resolver(root: Path, page: Page, pages: list[Page]):
    """``chapter_of(target)`` for links written on ``page``."""
    by_rel = {p.rel: p.number for p in pages}
    here = (root / page.rel).parent

    def chapter_of(target: str) -> int | None:
        target = target.split("#")[0]
        if not target or "://" in target:
            return None
        path = (here / target).resolve()
        try:
            rel = path.relative_to(root.resolve()).as_posix()
        except ValueError:
            return None
        for cand in (rel, rel + ".ipynb", rel + ".md"):
            if cand in by_rel:
                return by_rel[cand]
        return None

    return chapter_of


def read_ledger(root: Path) -> dict[str, dict[str, str]]:
    """``{page stem or "_common": {number: its source}}``."""
    folder = root / LEDGER
    out = {}
    for f in sorted(folder.glob("*.yml")):
        entries = yaml.safe_load(f.read_text()) or {}
        out[f.stem] = {str(k): str(v) for k, v in entries.items()}
    return out


def unsourced_numbers(root: Path | None = None) -> list[str]:
    """Every problem with the book's hand-written numbers and chapter links: a number that is
    neither glued nor in the ledger, a ledger entry without a source or no longer in its page,
    a chapter link with the wrong number, a chapter named without a link."""
    root = root or project_root()
    pages = toc_pages(root)
    ledger = read_ledger(root)
    common = ledger.get("_common", {})
    problems, seen_common = [], set()
    for page in pages:
        path = root / page.rel
        if not path.exists():
            continue
        own = ledger.get(page.stem, {})
        chapter_of = chapter_resolver(root, page, pages)
        found = set()
        for where, block in markdown_blocks(path):
            prose, link_problems = plain_prose(block, chapter_of)
            problems += [f"{where}: {p}" for p in link_problems]
            for token in numbers_in(prose):
                found.add(token)
                if token in own:
                    continue
                if token in common:
                    seen_common.add(token)
                    continue
                problems.append(
                    f"{where}: the number {token!r} is neither glued from the run nor listed with "
                    f"its source in {LEDGER / (page.stem + '.yml')}"
                )
        problems += [
            f"{LEDGER / (page.stem + '.yml')}: {token!r} is no longer in {page.rel}"
            for token in sorted(set(own) - found)
        ]
        problems += [
            f"{LEDGER / (page.stem + '.yml')}: {token!r} has no source"
            for token, source in own.items()
            if not source.strip()
        ]
    problems += [
        f"{LEDGER / '_common.yml'}: {token!r} is in no page"
        for token in sorted(set(common) - seen_common)
    ]
    stems = {p.stem for p in pages} | {"_common"}
    problems += [
        f"{LEDGER / (s + '.yml')}: no such page in _toc.yml" for s in sorted(set(ledger) - stems)
    ]
    return problems


# ---- exercises, figures, further reading ------------------------------------------------------

_EXERCISE = re.compile(r"```\{exercise\}\s*(.*?)\n(.*?)```", re.S)


@dataclass(frozen=True)
class Exercise:
    chapter: str
    label: str
    title: str
    kinds: tuple[str, ...]
    text: str
    answer_words: int  # words of written answer (markdown) inside its solution


def exercises(path: Path) -> list[Exercise]:
    """The exercises of a chapter notebook with their kinds and the words of prose their
    solutions give (a written answer)."""
    nb = json.loads(path.read_text())
    found, answers, open_label = [], {}, None
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] != "markdown":
            continue
        start = re.search(r"\{solution-start\}\s*(\S+)", src)
        if start:
            open_label = start.group(1)
            answers.setdefault(open_label, 0)
            continue
        if "{solution-end}" in src:
            open_label = None
            continue
        if open_label is not None:
            answers[open_label] += len(re.findall(r"[A-Za-z]{2,}", src))
        for m in _EXERCISE.finditer(src):
            options = dict(re.findall(r"^:([\w-]+):\s*(.*)$", m.group(2), re.M))
            body = _OPTION.sub("", m.group(2)).strip()
            found.append((options.get("label", ""), m.group(1).strip(), options, body))
    return [
        Exercise(
            path.stem,
            label,
            title,
            tuple(k for k in options.get("class", "").split() if k in EXERCISE_KINDS),
            body,
            answers.get(label, 0),
        )
        for label, title, options, body in found
    ]


#: a call in a figure cell that displays something besides the figure (a table, Markdown)
_DISPLAYS_MORE = re.compile(r"\bdisplay\((?!fig\b)")

#: a code cell that shows a figure (its output is an image)
_SHOWS_FIGURE = re.compile(r"plt\.show\(\)|show_figure\(|display\(fig")


def figure_cells(path: Path) -> list[tuple[int, dict]]:
    """(cell number, ``metadata.mystnb``) of each code cell of a notebook that shows a figure."""
    nb = json.loads(path.read_text())
    return [
        (k, c.get("metadata", {}).get("mystnb", {}))
        for k, c in enumerate(nb["cells"])
        if c["cell_type"] == "code" and _SHOWS_FIGURE.search("".join(c["source"]))
    ]


def figure_problems(path: Path) -> list[str]:
    """A figure without a name, caption or alt text that says what it shows, or never referred
    to from the chapter's text."""
    nb_text = "\n".join(t for _, t in markdown_blocks(path))
    sources = ["".join(c["source"]) for c in json.loads(path.read_text())["cells"]]
    problems = []
    for k, meta in figure_cells(path):
        figure, image = meta.get("figure", {}), meta.get("image", {})
        where = f"{path.name} cell {k}"
        name = figure.get("name", "")
        if not name or not figure.get("caption", "").strip():
            problems.append(f"{where}: a figure needs metadata.mystnb.figure name and caption")
        alt = image.get("alt", "")
        if len(alt.split()) < 6:
            problems.append(
                f"{where}: a figure needs metadata.mystnb.image.alt saying what it shows"
            )
        if _DISPLAYS_MORE.search(sources[k]):
            problems.append(
                f"{where}: a figure cell displays something else too (each display would be "
                "wrapped in the figure, its name duplicated): move it to a cell of its own"
            )
        if name and not re.search(r"\{numref\}`[^`]*" + re.escape(name) + r">?`", nb_text):
            problems.append(f"{where}: the text never refers to figure {name!r} ({{numref}})")
    return problems


def further_reading(path: Path) -> list[str]:
    """The citation keys under a page's 'Further reading' heading."""
    for _, block in markdown_blocks(path):
        m = re.search(r"^#+\s*Further reading\s*$(.*)", block, re.M | re.S)
        if m:
            return re.findall(r"\{cite[:\w]*\}`([^`]+)`", m.group(1))
    return []


# ---- glossary --------------------------------------------------------------------------------

GLOSSARY = Path("book") / "glossary.md"


def glossary_terms(root: Path | None = None) -> list[str]:
    """The terms the glossary defines (each a line of the ``{glossary}`` directive's body that
    is followed by an indented definition)."""
    root = root or project_root()
    text = (root / GLOSSARY).read_text()
    m = re.search(r"```\{glossary\}.*?\n(.*?)```", text, re.S)
    if not m:
        return []
    lines = m.group(1).splitlines()
    return [
        line.strip()
        for line, nxt in zip(lines, lines[1:] + [""])
        if line.strip() and not line.startswith((" ", "\t", ":")) and nxt.startswith((" ", "\t"))
    ]


def term_links(text: str) -> set[str]:
    """The glossary terms a text links with ``{term}`` (``{term}`text <Term>``` or
    ``{term}`Term```), lower-cased."""
    out = set()
    for m in re.finditer(r"\{term\}`([^`]*)`", text):
        inner = m.group(1)
        target = re.search(r"<([^>]*)>\s*$", inner)
        out.add((target.group(1) if target else inner).strip().lower())
    return out


def first_uses_unlinked(root: Path | None = None) -> list[str]:
    """Each glossary term whose first mention in reading order (the page that first names it in
    its prose) does not link it to the glossary."""
    root = root or project_root()
    terms = glossary_terms(root)
    pages = [p for p in toc_pages(root) if p.rel != GLOSSARY.as_posix()]
    texts = []
    for page in pages:
        path = root / page.rel
        if path.exists():
            raw = "\n".join(t for _, t in markdown_blocks(path))
            texts.append((page.rel, raw, _ROLE.sub(" ", _CODE.sub(" ", _without_code_fences(raw)))))
    problems = []
    for term in terms:
        word = re.compile(r"(?<![\w-])" + re.escape(term) + r"(?![\w-])", re.I)
        for rel, raw, prose in texts:
            linked = term.lower() in term_links(raw)
            if linked or word.search(prose):
                if not linked:
                    problems.append(
                        f"{rel} names '{term}' first in the book: link it with {{term}}"
                    )
                break
        else:
            problems.append(f"the glossary's '{term}' is used by no page")
    return problems
