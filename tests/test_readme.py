"""Every ```python block of the README runs as written (in a fresh process, serial)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from mpi_helpers import clean_env

ROOT = Path(__file__).resolve().parent.parent
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_block_runs(code, tmp_path):
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, env=clean_env(DISTBP_SERIAL="1"))
    assert result.returncode == 0, result.stderr[-3000:]
