"""`python -m distbp.predict`: a trained model's predictions (distbp.cli.predict)."""

import sys

from distbp.cli.predict import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
