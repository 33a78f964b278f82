"""Will the run fit (distbp.cli.memory): the estimate, the machine's figure, the refusal."""

import pytest

from distbp.cli import memory


def test_the_estimate_counts_buffers_and_activations():
    buffers, activations = memory.needed_bytes(1000, 50, batch=10, itemsize=4, optimizer="adam")
    assert buffers == 1000 * 4 * 6 and activations == 3 * 50 * 10 * 4


def test_available_memory_reads_meminfo_and_the_cgroup(tmp_path):
    (tmp_path / "meminfo").write_text("MemTotal: 100 kB\nMemAvailable:  2048 kB\n")
    cgroup = tmp_path / "cg"
    cgroup.mkdir()
    assert memory.available_bytes(tmp_path / "meminfo", cgroup) == (2048 * 1024, "MemAvailable")
    (cgroup / "memory.max").write_text("1500000\n")
    (cgroup / "memory.current").write_text("500000\n")
    assert memory.available_bytes(tmp_path / "meminfo", cgroup) == (
        1_000_000, "the cgroup's memory.max")
    (cgroup / "memory.max").write_text("max\n")
    assert memory.available_bytes(tmp_path / "meminfo", cgroup)[1] == "MemAvailable"


def test_a_run_that_cannot_fit_is_refused_naming_the_numbers(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: (10**9, "MemAvailable"))
    memory.check_fits(10**6, 10**4, 64, 4, "sgd", ranks_here=2)  # 40 MB: fits
    with pytest.raises(ValueError, match=r"the run needs about 2\.[0-9] GB \(100,000,000 "
                                         r"parameters: 2\.0 GB .* x 1 rank\(s\) on this "
                                         r"node\) but this machine can give 1\.0 GB"):
        memory.check_fits(10**8, 10, 1, 4, "sgd", ranks_here=1)
