"""What the app accepts: the file types of each tab, the limits that keep a request small, and
:class:`InputError`, whose message the page shows as it is."""

from __future__ import annotations

from idc_utils.core.constants import IMAGE_SUFFIXES

#: the tissue tab refuses larger images (a slide region of 5000 x 5000 px is 10,000 tiles)
MAX_TISSUE_PIXELS = 25_000_000


MAX_PATCH_FILES = 256


PATCH_TYPES = list(IMAGE_SUFFIXES)  # the same files as `predict` reads


TISSUE_TYPES = PATCH_TYPES + [".zip"]


class InputError(ValueError):
    """Input the app cannot use; the message is shown to the user as is."""


def shown_in_page(title: str):
    """Decorate an event handler so that :class:`InputError` reaches the page as a Gradio error
    message with ``title`` (never a traceback)."""
    import functools

    import gradio as gr

    def wrap(fn):
        @functools.wraps(fn)
        def handler(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except InputError as exc:
                raise gr.Error(str(exc), title=title, print_exception=False) from None

        return handler

    return wrap
