""".npz members (distbp.data.npz): headers checked before allocating, memory-mapped copies."""

import io
import zipfile

import numpy as np
import pytest

from distbp.data.npz import load_arrays, mapped_arrays, members


def test_members_and_mapped_arrays(tmp_path):
    np.savez_compressed(tmp_path / "d.npz", a=np.arange(6.0).reshape(2, 3), b=np.arange(4))
    assert members(tmp_path / "d.npz", "x") == {"a": ((2, 3), np.dtype("float64")),
                                                "b": ((4,), np.dtype("int64"))}
    mapped = mapped_arrays(tmp_path / "d.npz", ("a", "b"), tmp_path / "cache")
    assert isinstance(mapped["a"], np.memmap) and mapped["a"].tolist() == [[0, 1, 2],
                                                                           [3, 4, 5]]
    assert load_arrays(tmp_path / "d.npz", ("b",), "x")["b"].tolist() == [0, 1, 2, 3]


def test_a_header_claiming_more_than_its_bytes_is_refused_before_allocating(tmp_path):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False,
                                                  "shape": (10 ** 15,)})
    with zipfile.ZipFile(tmp_path / "h.npz", "w") as archive:
        archive.writestr("a.npy", header.getvalue() + bytes(8))
    with pytest.raises(ValueError, match=r"member a\.npy is truncated or corrupt: its header "
                                         r"\(1000000000000000,\) float64 needs "
                                         r"8,000,000,000,000,000 bytes, it has 8"):
        members(tmp_path / "h.npz", ".npz")


@pytest.mark.parametrize("make,message", [
    (lambda p: p.mkdir(), "it is a directory"),
    (lambda p: p.write_text("not a zip"), "not a zip archive"),
    (lambda p: np.savez(p, a=np.array([{}], dtype=object)), "refused: contains pickled"),
])
def test_unusable_files_are_one_line(tmp_path, make, message):
    path = tmp_path / "d.npz"
    make(path)
    with pytest.raises(ValueError, match=message):
        members(path, ".npz")
