"""TensorFlow imported without its C++ start-up lines on standard error.

TensorFlow 2.21 writes an absl warning and a oneDNN notice to file descriptor 2 when it loads,
whatever ``TF_CPP_MIN_LOG_LEVEL`` says. In a Jupyter kernel those bytes become a red stderr
output of the chapter's cell. The book's runner sends the kernel's descriptor 2 to a log file;
a chapter run with plain papermill or in Jupyter gets the same quiet through
:func:`quiet_tensorflow_import`, which the package installs when it is imported in a kernel:
whenever TensorFlow is first imported (and only then: a chapter that never needs it never pays
for it), descriptor 2 goes to a temporary file while it loads."""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import sys
import tempfile

#: what TensorFlow wrote to standard error while it loaded (empty until it was imported quietly)
STARTUP_LINES: list[str] = []


@contextlib.contextmanager
def _stderr_to_file():
    """Descriptor 2 into a temporary file; its lines kept in :data:`STARTUP_LINES`, and written
    back to standard error if the body fails (an import error is not hidden)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        log.seek(0)
        STARTUP_LINES[:] = log.read().decode(errors="replace").splitlines()


class _QuietLoader(importlib.abc.Loader):
    """TensorFlow's own loader, run with descriptor 2 in a temporary file."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with _stderr_to_file():
            self.loader.exec_module(module)


class _QuietTensorFlow(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` the usual way, once, and wraps its loader in :class:`_QuietLoader`."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # the real finders answer from now on
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def quiet_tensorflow_import() -> None:
    """Make the first ``import tensorflow`` of this process quiet (a no-op once it is loaded)."""
    if "tensorflow" in sys.modules or any(isinstance(f, _QuietTensorFlow) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _QuietTensorFlow())
