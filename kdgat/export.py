"""`python -m kdgat.export`, kept at this name for existing scripts and Slurm jobs: the command is
kdgat.cli.export (console script kdgat-export)."""

import sys

from kdgat.cli.export import main

if __name__ == "__main__":
    sys.exit(main())
