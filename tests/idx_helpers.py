"""Writing small IDX files and corrupting them, for the loader and bad-input tests."""

import gzip
import struct

import numpy as np


def write_idx(path, array, magic=None):
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = magic if magic is not None else bytes([0, 0, 0x08, array.ndim])
    data = header + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    if str(path).endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)


def write_family(directory, n_train=40, n_test=12, gz=True, **overrides):
    """A tiny fake Fashion-MNIST: 28x28 uint8 images, labels 0-9."""
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
              "train-labels-idx1-ubyte": np.arange(n_train) % 10,
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
              "t10k-labels-idx1-ubyte": np.arange(n_test) % 10}
    arrays.update(overrides)
    directory.mkdir(parents=True, exist_ok=True)
    for stem, array in arrays.items():
        write_idx(directory / (stem + (".gz" if gz else "")), array)
    return arrays


CORRUPTIONS = {
    "bad magic": (lambda p: write_idx(p, np.zeros((4, 28, 28)), magic=b"\x12\x34\x08\x03"),
                  "not an IDX file (bad magic number 12340803)"),
    "wrong dims": (lambda p: write_idx(p, np.zeros((4, 28 * 28))),
                   "expected 3 dimension(s), the header says 2"),
    "wrong type": (lambda p: write_idx(p, np.zeros((4, 28, 28)), magic=b"\0\0\x0d\x03"),
                   "IDX data type 0x0d is not supported"),
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[:-100]),
                  "needs 31376 (truncated)"),
    "trailing": (lambda p: p.write_bytes(p.read_bytes() + b"xx"), "(trailing data)"),
    "empty": (lambda p: p.write_bytes(b""), "not an IDX file (bad magic number empty)"),
}


def corrupt(directory, case):
    write_family(directory, gz=False)
    if case == "labels out of range":
        write_idx(directory / "train-labels-idx1-ubyte", np.full(40, 11))
        return "fashion-mnist: train labels must be in [0, 10), found 11"
    if case == "corrupt gzip":
        (directory / "t10k-images-idx3-ubyte").unlink()
        (directory / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
        return "corrupt or truncated gzip file"
    change, message = CORRUPTIONS[case]
    change(directory / "train-images-idx3-ubyte")
    return message
