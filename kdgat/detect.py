"""`python -m kdgat.detect`, kept at this name for existing scripts and Slurm jobs: the command is
kdgat.cli.detect (console script kdgat-detect)."""

import sys

from kdgat.cli.detect import main

if __name__ == "__main__":
    sys.exit(main())
