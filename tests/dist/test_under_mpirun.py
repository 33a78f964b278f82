"""The in-process MPI suite (tests marked `mpi`: distbp.dist's step, reductions,
evaluation, agreement) under this environment's mpirun at 1, 2, 3 and 4 ranks."""

import re
import subprocess
import sys

import pytest
from mpi_helpers import ROOT, run_mpi

SUITE = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "mpi", "tests/dist"]


@pytest.fixture(scope="module")
def suite_size():
    """How many tests carry the `mpi` marker (collected in one plain process)."""
    listing = subprocess.run([sys.executable, *SUITE, "--collect-only"], cwd=ROOT,
                             capture_output=True, text=True, timeout=60).stdout
    count = int(re.search(r"(\d+)/\d+ tests collected", listing).group(1))
    assert count >= 20, listing[-2000:]
    return count


@pytest.mark.parametrize("ranks", [1, 2, 3, 4])
def test_mpi_suite_under_mpirun(ranks, suite_size):
    result, _ = run_mpi(ranks, [*SUITE, "--with-mpi", "-o", "timeout=60"], timeout=300)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    counts = re.findall(r"(\d+) passed", result.stdout)
    assert counts == [str(suite_size)] * ranks  # every rank ran all of the suite
