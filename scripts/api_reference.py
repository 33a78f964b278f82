"""Print the API reference (docs/api.md's generated part) from the docstrings.

    python scripts/api_reference.py > docs/api.md    # a test keeps the file equal
"""

from distbp.cli.docs import api_reference

if __name__ == "__main__":
    print(api_reference(), end="")
