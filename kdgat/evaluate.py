"""`python -m kdgat.evaluate`, kept at this name for existing scripts and Slurm jobs: the command is
kdgat.cli.evaluate (console script kdgat-evaluate)."""

import sys

from kdgat.cli.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
