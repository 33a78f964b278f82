"""Print the README's flag table, made from `python -m distbp.train`'s parser.

    python scripts/flag_table.py    # paste over the table in README.md (a test compares)
"""

from distbp.cli.docs import flag_table

if __name__ == "__main__":
    print(flag_table(), end="")
