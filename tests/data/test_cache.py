"""The decompression cache (distbp.data.cache): written once, atomically, never half."""

import pytest

from distbp.data.cache import cache_name, fill_once


def test_a_cache_file_is_written_once(tmp_path):
    source = tmp_path / "data.gz"
    source.write_bytes(b"abc")
    target = cache_name(source, ".raw", tmp_path / "cache")
    assert target.name.startswith("data.gz.") and target.name.endswith(".raw")
    calls = []

    def write(temporary):
        calls.append(temporary)
        temporary.write_bytes(b"x" * 10)

    assert fill_once(target, write) == target and fill_once(target, write) == target
    assert len(calls) == 1 and target.read_bytes() == b"x" * 10
    source.write_bytes(b"abcd")  # another version of the file: another cache name
    assert cache_name(source, ".raw", tmp_path / "cache") != target


def test_a_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "cache" / "x.raw"

    def broken(temporary):
        temporary.write_bytes(b"half")
        raise ValueError("the data is bad")

    with pytest.raises(ValueError, match="the data is bad"):
        fill_once(target, broken)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [".lock"]
