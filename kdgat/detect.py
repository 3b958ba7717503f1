"""`python -m kdgat.detect MODEL --replay FILE | --bus IF:CH`: streaming detection; the code lives
in kdgat.deploy.detect."""

import sys

from kdgat.deploy.detect import main

if __name__ == "__main__":
    sys.exit(main())
