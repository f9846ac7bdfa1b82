"""Thread limits for small numeric fits."""

from __future__ import annotations


def one_blas_thread():
    """A ``with`` block with one BLAS thread: for fits on a few thousand rows, threads cost more
    than they give (a 2-core machine fitted the head 5-8x faster this way)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")
