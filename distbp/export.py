"""`python -m distbp.export MODEL -o model.onnx`: a trained model as ONNX (distbp.cli.export)."""

import sys

from distbp.cli.export import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
