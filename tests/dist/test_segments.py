"""Releasing MPICH's /dev/shm segment names (distbp.dist.segments): the names a process
has mapped go, the memory stays mapped, other files stay. (Every MPI test also checks
that no job leaves a segment behind: mpi_helpers.run_mpi.)"""

import mmap
import os
from pathlib import Path

import pytest

from distbp.dist.segments import release_segment_names

SHM = Path("/dev/shm")


@pytest.mark.skipif(not SHM.is_dir(), reason="no /dev/shm")
def test_mapped_segment_names_are_unlinked_and_their_memory_stays(tmp_path):
    segment = SHM / f"mpich_shm_distbp_test_{os.getpid()}"
    other = SHM / f"not_mpich_{os.getpid()}"
    segment.write_bytes(b"x" * 4096)
    other.write_bytes(b"y")
    try:
        with open(segment, "r+b") as handle:
            memory = mmap.mmap(handle.fileno(), 4096)
        maps = tmp_path / "maps"
        maps.write_text(f"7f00-7f01 rw-s 00000000 00:1a 123 {segment}\n"
                        f"7f02-7f03 rw-s 00000000 00:1a 124 {other}\n"
                        "7f04-7f05 r-xp 00000000 08:01 125 /usr/lib/libc.so.6\n")
        assert release_segment_names(str(maps)) == [str(segment)]
        assert not segment.exists() and other.exists()
        assert memory[:1] == b"x"  # still mapped
        memory.close()
    finally:
        segment.unlink(missing_ok=True)
        other.unlink(missing_ok=True)


def test_an_unreadable_maps_file_releases_nothing(tmp_path):
    assert release_segment_names(str(tmp_path / "missing")) == []
