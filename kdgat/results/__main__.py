"""``python -m kdgat.results``: see kdgat.results.cli."""

import sys

from kdgat.results.cli import main

sys.exit(main())
