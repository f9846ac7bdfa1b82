"""TensorFlow imported without its C++ start-up lines on standard error.

TensorFlow 2.21 writes an absl warning and a oneDNN notice to file descriptor 2 when it loads,
whatever ``TF_CPP_MIN_LOG_LEVEL`` says. In a Jupyter kernel those bytes become a red stderr
output of the chapter's first cell. The book's runner sends the kernel's descriptor 2 to a log
file; a chapter run with plain papermill or in Jupyter gets the same quiet through
:func:`import_tensorflow_quietly`, which the package calls when it is imported in a kernel."""

from __future__ import annotations

import os
import sys
import tempfile

#: what TensorFlow wrote to standard error while it loaded (empty until it was imported here)
STARTUP_LINES: list[str] = []


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with descriptor 2 sent to a temporary file; keep its lines in
    :data:`STARTUP_LINES`. An import error is raised with those lines shown, not hidden."""
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except Exception:
            os.dup2(saved, 2)
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        log.seek(0)
        STARTUP_LINES[:] = log.read().decode(errors="replace").splitlines()
