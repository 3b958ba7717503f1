"""`python -m kdgat.evaluate RUN_DIR ...`: the evaluate command, kept at this name; the code lives
in kdgat.evaluation.evaluate."""

import sys

from kdgat.evaluation.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
