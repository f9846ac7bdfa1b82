"""Progress for long loops: a tqdm bar (or nothing), and a one-line percentage display that reads
the same in a terminal, a notebook and a rendered book."""

from __future__ import annotations


def progress_bar(total: int, desc: str, enabled: bool):
    """A tqdm bar counting patches when ``enabled`` (and tqdm is installed), else one that
    does nothing."""
    if enabled:
        try:
            from tqdm.auto import tqdm

            return tqdm(total=total, desc=desc, unit="patch", mininterval=1.0)
        except ImportError:  # pragma: no cover
            pass

    class _Null:
        def update(self, n):
            pass

        def close(self):
            pass

    return _Null()


class ProgressLine:
    """``progress(stage, fraction)`` printed as one growing line per stage, in steps of 10%:
    readable in a terminal, a notebook and a rendered book alike."""

    def __init__(self, step: float = 0.1, out=None):
        self.step, self.out, self.stage, self.next = step, out, None, 0.0
        self.line_open = False

    def __call__(self, stage: str, fraction: float) -> None:
        import sys

        out = self.out or sys.stdout
        if stage != self.stage:
            if self.line_open:  # the last stage stopped short of 100%
                print(file=out)
            print(f"{stage}:", end="", file=out)
            self.stage, self.next, self.line_open = stage, self.step, True
        while fraction + 1e-9 >= self.next:
            print(f" {round(100 * self.next)}%", end="", file=out, flush=True)
            self.next += self.step
        if fraction >= 1.0 - 1e-9 and self.line_open:
            print(file=out)
            self.line_open = False
