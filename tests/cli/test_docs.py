"""The generated documentation (distbp.cli.docs) is what the files hold."""

from pathlib import Path

from distbp.cli.docs import api_reference, flag_table

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_flag_table_comes_from_the_parser():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert flag_table() in readme, "README's flag table is stale: python scripts/flag_table.py"


def test_docs_api_md_comes_from_the_docstrings():
    text = api_reference()
    assert (ROOT / "docs" / "api.md").read_text() == text, \
        "docs/api.md is stale: python scripts/api_reference.py > docs/api.md"
    assert "## `distbp.LSTM(" in text and "## `distbp.load_model(" in text
