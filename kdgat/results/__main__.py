"""``python -m kdgat.results``: the command is kdgat.cli.results (console script kdgat-results)."""

import sys

from kdgat.cli.results import main

sys.exit(main())
