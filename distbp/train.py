"""`python -m distbp.train`: the training job's entry point (distbp.cli.job)."""

import sys

from distbp.cli.job import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
