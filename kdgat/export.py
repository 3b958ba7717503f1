"""`python -m kdgat.export RUN_DIR [--format onnx|torchscript] [--report]`: export a run as a
detector artefact, or report its deployment figures; the code lives in kdgat.deploy.export."""

import sys

from kdgat.deploy.export import main

if __name__ == "__main__":
    sys.exit(main())
