"""`python -m kdgat.transfer`, kept at this name for existing scripts and Slurm jobs: the command is
kdgat.cli.transfer (console script kdgat-transfer)."""

import sys

from kdgat.cli.transfer import main

if __name__ == "__main__":
    sys.exit(main())
