"""The built pages, opened in a real browser with the network cut off: every page loads with no
request that leaves the machine, no console error, no missing image and no broken internal link;
the student edition shows the exercises and no solution.

Reads the HTML that ``make test-book`` builds (``IDC_BOOK_HTML``, ``IDC_STUDENT_HTML``)."""

from __future__ import annotations

import functools
import http.server
import os
import sys
import threading
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from conftest import launch_chromium, skip_or_fail

pytestmark = [pytest.mark.book, pytest.mark.browser]


def built(var: str) -> Path:
    html = Path(os.environ.get(var, "_build/html"))
    if not (html / "index.html").exists():
        skip_or_fail(f"no built book at {html}: run `make test-book`")
    return html


@pytest.fixture(scope="module")
def site():
    html = built("IDC_BOOK_HTML")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request, client_address):
            if not isinstance(sys.exc_info()[1], ConnectionError):  # the browser moved on
                super().handle_error(request, client_address)

    handler = functools.partial(Quiet, directory=str(html))
    server = Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield html, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def pages(html: Path) -> list[str]:
    return sorted(
        p.relative_to(html).as_posix()
        for p in html.rglob("*.html")
        if not p.relative_to(html).as_posix().startswith(("_static/", "_sources/"))
    )


def test_every_page_works_offline(site):
    from playwright.sync_api import sync_playwright

    html, base = site
    names = pages(html)
    assert "index.html" in names and "book/status.html" in names and len(names) >= 10
    problems, links = [], set()
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            page = browser.new_page()
            outside = []

            def route(r):
                if urllib.parse.urlparse(r.request.url).hostname in ("127.0.0.1", "localhost"):
                    r.continue_()
                else:
                    outside.append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            errors = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            for name in names:
                errors.clear()
                outside.clear()
                page.goto(base + name, wait_until="load")
                page.wait_for_timeout(150)
                broken = page.evaluate(
                    "() => Array.from(document.images)"
                    ".filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
                )
                hrefs = page.evaluate(
                    "() => Array.from(document.querySelectorAll('a[href]')).map(a => a.href)"
                )
                links.update(h.split("#")[0] for h in hrefs if h.startswith(base))
                for kind, found in (
                    ("request leaving the machine", outside),
                    ("console error", errors),
                    ("missing image", broken),
                ):
                    problems += [f"{name}: {kind}: {x}" for x in found]
        finally:
            browser.close()
    for url in sorted(links):  # every internal link answers
        try:
            urllib.request.urlopen(url, timeout=5)
        except OSError as exc:
            problems.append(f"broken internal link {url}: {exc}")
    assert not problems, "\n".join(problems[:30])


def test_chapters_show_their_frame_and_run_time(site):
    html, _ = site
    for chapter in sorted((html / "notebooks").glob("*.html")):
        text = chapter.read_text()
        assert "Learning objectives" in text, chapter.name
        assert "Run time." in text and "This chapter ran in" in text, chapter.name
        assert text.count('class="admonition exercise') + text.count(
            "exercise admonition"
        ) >= 3 or (text.count("Exercise") >= 3), chapter.name
    status = (html / "book" / "status.html").read_text()
    assert "Library versions" in status and "tensorflow" in status.lower()


def test_the_student_edition_has_exercises_and_no_solutions(site):
    html, _ = site
    student = built("IDC_STUDENT_HTML")
    for chapter in sorted((student / "notebooks").glob("*.html")):
        text = chapter.read_text()
        assert "Exercise" in text and "Solution" not in text, chapter.name
    teacher = (html / "notebooks" / "01_eda.html").read_text()
    assert "Solution" in teacher


def test_every_image_is_a_numbered_figure_with_alt_text_that_describes_it(site):
    """No image's alt text is a file name or hash (what myst-nb writes when a cell gives none),
    and every image of a chapter sits in a figure with a numbered caption."""
    import re

    html, _ = site
    problems = []
    for page in sorted((html / "notebooks").glob("*.html")) + [html / "index.html"]:
        text = page.read_text()
        for img in re.findall(r"<img\b[^>]*>", text):
            alt = re.search(r'alt="([^"]*)"', img)
            alt = alt.group(1) if alt else ""
            if "logo" in img or "_static/" in img:
                continue
            if len(alt.split()) < 4 or re.search(r"\.(png|svg|jpe?g)$|[0-9a-f]{16}", alt):
                problems.append(f"{page.name}: alt {alt!r}")
        for figure in re.findall(r"<figure\b.*?</figure>", text, re.S):
            if "<img" in figure and not re.search(r'class="caption-number"', figure):
                problems.append(f"{page.name}: a figure without a numbered caption")
        images = len(re.findall(r"<img\b", text)) - text.count("_static/")
        figures = len(re.findall(r"<figure\b[^>]*>\s*(?:<a[^>]*>\s*)?<img", text))
        if images > figures:
            problems.append(f"{page.name}: {images - figures} image(s) outside a figure")
    assert not problems, "\n".join(problems[:40])


def test_the_chapters_show_what_issue_21_asked_for(site):
    """The code and maths that a chapter teaches are in view on its page."""
    html, _ = site
    page = {p.stem: p.read_text() for p in (html / "notebooks").glob("*.html")}
    for stem in ("05_cnn_baseline", "06_efficientnet"):
        assert "Total params" in page[stem], stem
    assert page["10_synthetic_patches"].count('class="math') >= 3
    assert page["03_metrics_primer"].count('class="math') >= 3
    assert "gr.Interface" in page["09_gradio_demo"] or "gr.Blocks" in page["09_gradio_demo"]
    glossary = (html / "book" / "glossary.html").read_text()
    assert glossary.count('class="glossary') or glossary.count("<dt ") >= 20
    assert 'href="../book/glossary.html#term-' in page["03_metrics_primer"]
