"""``python -m idc_utils``: the command line (:mod:`idc_utils.cli`)."""

import sys

from idc_utils.cli import main

if __name__ == "__main__":
    sys.exit(main())
