"""Sphinx extension: each inline script once per page.

With Sphinx 7.4, jupyter-book 1 and sphinx-thebe, the inline script that declares
``const THEBE_JS_URL`` (and sphinx-togglebutton's selector) reaches every page twice: once from
the extension registry (stored with the file name ``""``) and once from the builder (``None``),
which Sphinx does not see as the same asset. The second ``const`` is a JavaScript error in every
reader's console. This keeps the first copy of each inline script and every file script.
"""

from __future__ import annotations


def _drop_repeated_inline_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        body = getattr(script, "attributes", {}).get("body")
        if not getattr(script, "filename", None) and body:
            if body in seen:
                continue
            seen.add(body)
        unique.append(script)
    scripts[:] = unique


def setup(app):
    app.connect("html-page-context", _drop_repeated_inline_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
