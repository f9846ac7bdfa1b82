"""A local Orthanc server with DICOMweb, for the DICOMweb chapter, the app and the tests.

Orthanc and its DICOMweb and whole-slide plugins come from Debian
(``apt-get install orthanc orthanc-dicomweb orthanc-wsi``). The package does not start a service
that this project could use, so :func:`start_orthanc` runs the binary itself with the
configuration in ``orthanc.json`` (next to this file): HTTP on a free port, remote access refused
(only this machine may connect), the DICOM network port off, storage in a temporary folder,
plugins loaded explicitly. It stops with the ``with`` block, or on :meth:`OrthancServer.stop`.

This is a teaching server: no TLS and no authentication. A hospital deployment puts a production
PACS behind both.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

CONFIG = Path(__file__).with_name("orthanc.json")


PLUGIN_DIRS = (
    "/usr/share/orthanc/plugins",
    "/usr/lib/orthanc/plugins",
    "/usr/local/share/orthanc/plugins",
)


PLUGINS = ("libOrthancDicomWeb.so", "libOrthancWSI.so")


INSTALL_HINT = (
    "install it with `sudo apt-get install orthanc orthanc-dicomweb orthanc-wsi` (Debian, "
    "Ubuntu), or point to a running server's DICOMweb address instead"
)


class OrthancError(RuntimeError):
    """Orthanc is missing, or did not start; the message says why and what to do."""


def find_orthanc() -> tuple[str, list[str]]:
    """The Orthanc binary and the plugin files this project loads."""
    binary = os.environ.get("IDC_ORTHANC") or shutil.which("Orthanc")
    if binary is None and Path("/usr/sbin/Orthanc").exists():
        binary = "/usr/sbin/Orthanc"  # /usr/sbin is not on every user's PATH
    if not binary:
        raise OrthancError(f"Orthanc is not installed: {INSTALL_HINT}")
    plugins, missing = [], []
    for name in PLUGINS:
        found = [Path(d) / name for d in PLUGIN_DIRS if (Path(d) / name).exists()]
        (plugins.append(str(found[0])) if found else missing.append(name))
    if missing:
        raise OrthancError(f"Orthanc plugins {missing} are missing: {INSTALL_HINT}")
    return binary, plugins


@dataclass
class OrthancServer:
    """A running Orthanc: its address, its DICOMweb root, its process and its folder."""

    url: str
    process: subprocess.Popen
    workdir: Path
    log_path: Path
    owns_workdir: bool = field(default=False, repr=False)

    @property
    def dicomweb_url(self) -> str:
        return self.url + "/dicom-web"

    def version(self) -> str:
        return str(_get_json(self.url + "/system").get("Version", "?"))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> OrthancServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _get_json(url: str, timeout: float = 2.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def write_config(workdir: Path, port: int, plugins: list[str]) -> Path:
    """The project's configuration with this run's port, storage folder and plugin paths."""
    config = json.loads(CONFIG.read_text())
    storage = workdir / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    config.update(
        HttpPort=port,
        StorageDirectory=str(storage),
        IndexDirectory=str(storage),
        Plugins=plugins,
    )
    path = workdir / "orthanc.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def start_orthanc(
    workdir: str | os.PathLike | None = None, port: int | None = None, timeout: float = 60.0
) -> OrthancServer:
    """Start Orthanc on ``127.0.0.1:<port>`` (a free one by default) with its storage in
    ``workdir`` (a temporary folder, removed on stop, by default); return when it answers."""
    binary, plugins = find_orthanc()
    owns = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="idc-orthanc-")) if owns else Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if not port:
        from idc_utils.core.ports import free_port

        port = free_port()
    config = write_config(workdir, port, plugins)
    log_path = workdir / "orthanc.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [binary, str(config)], stdout=log, stderr=subprocess.STDOUT, cwd=workdir
        )
    server = OrthancServer(f"http://127.0.0.1:{port}", proc, workdir, log_path, owns)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            server.stop()
            raise OrthancError(f"Orthanc stopped at start-up (exit {proc.returncode}):\n{tail}")
        try:
            _get_json(server.url + "/system", timeout=1.0)
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            time.sleep(0.2)
            continue
        loaded = set(json.loads(urllib.request.urlopen(server.url + "/plugins").read()))
        if not {"dicom-web", "wsi"} <= loaded:
            server.stop()
            raise OrthancError(f"Orthanc started without its plugins (loaded: {sorted(loaded)})")
        return server
    server.stop()
    raise OrthancError(f"Orthanc did not answer on port {port} within {timeout:.0f} s")
