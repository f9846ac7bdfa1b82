"""A chapter opened on Colab (the book's launch button): its first cell sets everything up.

Each chapter's first code cell is :data:`SETUP_CELL` with the chapter's number (written into the
notebooks by ``tools/setup_cells.py``; a test checks they agree). On Colab, and only there, it

1. clones the book's repository (the chapters read its ``book/data`` studies and profiles) and
   installs the package with the extras a chapter needs; Colab's own TensorFlow is kept;
2. calls :func:`setup`: the teaching sample, copied out of a zip at ``$IDC_SAMPLE_URL`` or out
   of the Kaggle download (a Kaggle account), every file's hash checked; and what the chapter
   reads of the run the published book made (``$IDC_RUN_URL``, by default the ``run/`` folder of
   the repository's GitHub Pages site), every hash checked: the split for chapters 2 to 5 (and
   chapter 5's CNN for chapter 6), everything from chapter 7 on, so no chapter trains what an
   earlier one trained.

Locally the cell does nothing: the reader has run ``make install`` and set ``IDC_DATA_DIR``.
``IDC_BOOK_SETUP=1`` runs it anywhere (the tests do, against local servers).
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from idc_utils.chapters.published_run import fetch_run

#: the repository the cell clones; a fork sets its own with tools/setup_cells.py --repository
REPOSITORY = "https://github.com/your-account/idc-book"

#: the extras a chapter needs besides TensorFlow, which Colab has (``colab``: the chapters'
#: glue and the Keras range the package is tested with; not the book's build tools, which would
#: replace the Colab kernel's own ipykernel)
EXTRAS = "weights,ml,app,data,dicom,colab"

#: what a chapter reads of the published run (chapter 1 makes the split itself; from chapter 7
#: on, everything)
READS = {
    2: ("split.csv",),
    3: ("split.csv",),
    4: ("split.csv",),
    5: ("split.csv",),
    6: ("split.csv", "models/cnn."),
}

SETUP_CELL = """\
# On Colab only: the book's code, the teaching sample and, from chapter 7 on,
# the models the published book trained. On your machine it does nothing
# (there: make install, and IDC_DATA_DIR; see How to run).
import os
import subprocess
import sys

if "google.colab" in sys.modules or os.environ.get("IDC_BOOK_SETUP"):
    repo = os.environ.get("IDC_BOOK_REPO", "{repository}")
    home = os.environ.setdefault("IDC_BOOK_ROOT", os.path.abspath("idc-book"))
    if not os.path.isdir(home):
        subprocess.run(["git", "clone", "--depth", "1", repo, home], check=True)
    extras = os.environ.get("IDC_BOOK_EXTRAS", "{extras}")
    pip = [sys.executable, "-m", "pip", "install", "-q", "-e"]
    pip += [f"{{home}}[{{extras}}]" if extras else home]
    subprocess.run(pip + os.environ.get("IDC_BOOK_PIP_ARGS", "").split(), check=True)
    sys.path.insert(0, home)
    from idc_utils.chapters import colab

    colab.setup(home, chapter={chapter}, repository=repo)"""


def setup_cell(chapter: int, repository: str = REPOSITORY) -> str:
    """The first code cell of chapter ``chapter``."""
    return SETUP_CELL.format(repository=repository, extras=EXTRAS, chapter=chapter)


def _kaggle_secrets() -> dict[str, str]:
    """KAGGLE_USERNAME and KAGGLE_KEY from Colab's Secrets panel, for the download that runs in
    a subprocess (which cannot read them); empty when absent or not on Colab."""
    try:
        from google.colab import userdata
    except ImportError:
        return {}
    found = {}
    for key in ("KAGGLE_USERNAME", "KAGGLE_KEY"):
        try:
            found[key] = userdata.get(key)
        except Exception:  # not set, or access not granted to this notebook
            continue
    return {k: v for k, v in found.items() if v}


def pages_run_url(repository: str) -> str | None:
    """Where the Pages workflow publishes the run of a GitHub repository:
    ``https://github.com/<owner>/<name>`` -> ``https://<owner>.github.io/<name>/run/``."""
    parts = repository.rstrip("/").removesuffix(".git").split("/")
    if len(parts) < 2 or "github.com" not in repository:
        return None
    return f"https://{parts[-2].lower()}.github.io/{parts[-1]}/run/"


def setup(home: str | os.PathLike, chapter: int, repository: str = REPOSITORY, log=print) -> dict:
    """The sample into ``<home>/data/idc-sample`` and, from chapter 7 on, the published run into
    ``<home>/runs/sample``; sets ``IDC_DATA_DIR`` and ``IDC_BOOK_ROOT``. Returns what it set."""
    home = Path(home).resolve()
    os.environ["IDC_BOOK_ROOT"] = str(home)
    data = Path(os.environ.get("IDC_DATA_DIR") or home / "data" / "idc-sample")
    command = [sys.executable, "-m", "idc_utils", "data", "sample", "--out", str(data)]
    url = os.environ.get("IDC_SAMPLE_URL")
    if url:
        zipped = home / "data" / "idc-sample.zip"
        if not zipped.exists():  # complete or absent: a broken download is a .part
            zipped.parent.mkdir(parents=True, exist_ok=True)
            log(f"downloading the teaching sample from {url}")
            part = zipped.with_name(zipped.name + ".part")
            urllib.request.urlretrieve(url, part)
            part.replace(zipped)
        command += ["--from", str(zipped)]
    else:
        command += ["--dest", str(home / "data")]  # the Kaggle set, with kagglehub
    subprocess.run(command, check=True, env={**os.environ, **_kaggle_secrets()})
    os.environ["IDC_DATA_DIR"] = str(data)
    done = {"IDC_BOOK_ROOT": str(home), "IDC_DATA_DIR": str(data)}
    if chapter > 1:
        run_url = os.environ.get("IDC_RUN_URL") or pages_run_url(repository)
        if not run_url:
            raise ValueError(
                f"no published run for {repository}: set IDC_RUN_URL to the run/ folder of a "
                "published book"
            )
        rep = fetch_run(run_url, home / "runs" / "sample", only=READS.get(chapter))
        log(
            f"the published run: {len(rep.downloaded)} files fetched, {len(rep.kept)} already "
            f"there, every SHA-256 checked ({run_url})"
        )
        done["run"] = str(home / "runs" / "sample")
    return done
