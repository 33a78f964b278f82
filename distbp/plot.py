"""`python -m distbp.plot`: the training curves' entry point (distbp.cli.plot)."""

import sys

from distbp.cli.plot import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
