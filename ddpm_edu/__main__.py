"""``python -m ddpm_edu ...`` is the ``ddpm-edu`` command (see :mod:`ddpm_edu.cli`)."""

import sys

from ddpm_edu.cli import main

if __name__ == "__main__":
    sys.exit(main())
