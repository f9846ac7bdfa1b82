"""A free TCP port on this machine (for the app, Orthanc and tests)."""

from __future__ import annotations


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]
