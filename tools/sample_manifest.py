"""Write the teaching sample's manifest, idc_utils/data/sample_manifest.csv.gz: one row per file
(relative path, patient, label, size, SHA-256 of its bytes), from a folder that holds the sample.
``python -m idc_utils data sample`` copies exactly these files out of a Kaggle download.

    python tools/sample_manifest.py                 # from $IDC_DATA_DIR, else ../shared/idc-sample
    python tools/sample_manifest.py FOLDER --out manifest.csv.gz

The same folder always gives the same bytes, so a regenerated manifest shows no change in git.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from idc_utils.data import sample

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default = os.environ.get("IDC_DATA_DIR") or str(ROOT.parent / "shared" / "idc-sample")
    ap.add_argument("folder", nargs="?", default=default, help=f"the sample (default: {default})")
    ap.add_argument(
        "--out",
        default=str(ROOT / "idc_utils" / "data" / sample.MANIFEST_NAME),
        help="the manifest to write (default: the one the package ships)",
    )
    args = ap.parse_args(argv)
    entries = sample.build_manifest(args.folder)
    path = sample.write_manifest(entries, args.out)
    positive = sum(e.label for e in entries)
    patients = len({e.patient_id for e in entries})
    print(
        f"{path}: {len(entries):,} files of {patients} patients, {positive / len(entries):.1%} "
        f"IDC+, {sum(e.size for e in entries) / 1e6:.1f} MB, from {args.folder}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
