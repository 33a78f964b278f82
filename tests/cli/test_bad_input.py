"""The README's bad-input table: each row gives one clear line and exit code 2 under
`mpirun -n 4`, on every rank's behalf (no rank left waiting), and no partial files."""

import io
import struct
import zipfile

import numpy as np
import pytest
from idx_helpers import corrupt, write_family
from mpi_helpers import run_mpi

from distbp.cli import checkpoint

JOB = ["-m", "distbp.train", "--quiet", "--epochs", "1", "--hidden", "16"]


def npz(tmp_path, **overrides):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.standard_normal((40, 3)), "y_train": rng.integers(0, 3, 40),
              "x_test": rng.standard_normal((8, 3)), "y_test": rng.integers(0, 3, 8)}
    arrays.update(overrides)
    np.savez(tmp_path / "d.npz", **arrays)
    return ["--dataset", str(tmp_path / "d.npz")]


def checkpoint_from(tmp_path, *flags):
    result, _ = run_mpi(2, [*JOB, "--checkpoint-dir", str(tmp_path / "old"), *flags])
    assert result.returncode == 0, result.stderr
    return sorted((tmp_path / "old").iterdir())[-1]


def truncated_checkpoint(tmp_path):
    path = checkpoint_from(tmp_path)
    path.write_bytes(path.read_bytes()[:2000])
    return ["--resume", str(path)]


def pickled_checkpoint(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, params=np.array([{"a": 1}], dtype=object), checksum=np.array("x"),
             format=np.array(1))
    return ["--resume", str(path)]


def missing_data(tmp_path):
    (tmp_path / "empty").mkdir()
    return ["--dataset", "mnist", "--data-dir", str(tmp_path / "empty")]


def idx_case(case):
    def flags(tmp_path):
        corrupt(tmp_path / "d", case)
        return ["--dataset", "fashion-mnist", "--data-dir", str(tmp_path / "d")]
    return flags


def config_file(text):
    def flags(tmp_path):
        (tmp_path / "c.toml").write_text(text)
        return ["--config", str(tmp_path / "c.toml")]
    return flags


def malformed_metadata(tmp_path):
    path = checkpoint_from(tmp_path)
    arrays = dict(np.load(path))
    arrays["position"] = np.array('{"step": "many"}')
    arrays["checksum"] = np.array(checkpoint.checksum(arrays))  # valid checksum, bad content
    np.savez(path, **arrays)
    return ["--resume", str(path)]


def npy_member(name, shape, payload):
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f8", "fortran_order": False,
                                                  "shape": shape})
    return f"{name}.npy", buffer.getvalue() + payload


def huge_npz_header(tmp_path):
    npz(tmp_path)
    with zipfile.ZipFile(tmp_path / "d.npz", "a") as archive:
        archive.writestr(*npy_member("extra", (10 ** 12, 3), bytes(24)))
    with zipfile.ZipFile(tmp_path / "h.npz", "w") as archive:
        for name in ("x_train", "y_train", "x_test", "y_test"):
            archive.writestr(*npy_member(name, (10 ** 12, 3), bytes(24)))
    return ["--dataset", str(tmp_path / "h.npz")]


def huge_checkpoint_member(tmp_path):
    path = checkpoint_from(tmp_path)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(*npy_member("extra", (10 ** 12,), bytes(8)))
    return ["--resume", str(path)]


def overflowing_idx(tmp_path):
    write_family(tmp_path / "d", gz=False)
    header = bytes([0, 0, 8, 3]) + struct.pack(">3I", 2 ** 32 - 1, 2 ** 32 - 1, 2 ** 32 - 1)
    (tmp_path / "d" / "train-images-idx3-ubyte").write_bytes(header + bytes(784))
    return ["--dataset", "fashion-mnist", "--data-dir", str(tmp_path / "d")]


def directory_as(flag, name):
    def flags(tmp_path):
        (tmp_path / name).mkdir()
        return [flag, str(tmp_path / name)]
    return flags


ROWS = {
    "missing data files": (missing_data, "mnist not found: looked for"),
    "corrupt data file": (idx_case("truncated"), "(truncated)"),
    "labels out of range": (idx_case("labels out of range"), "labels must be in [0, 10)"),
    "NaN in features": (lambda t: npz(t, x_train=np.full((40, 3), np.nan)),
                        "x_train contains NaN or infinite values"),
    "inf in features": (lambda t: npz(t, x_test=np.full((8, 3), np.inf)),
                        "x_test contains NaN or infinite values"),
    "negative learning rate": (lambda t: ["--lr", "-0.1"], "--lr must be a finite number > 0"),
    "zero learning rate": (lambda t: ["--lr", "0"], "--lr must be a finite number > 0"),
    "zero batch size": (lambda t: ["--batch-size", "0"], "--batch-size must be a positive"),
    "more ranks than examples": (lambda t: npz(t, x_train=np.zeros((3, 3)),
                                               y_train=np.array([0, 1, 2])),
                                 "4 ranks but only 3 training examples"),
    "unknown dataset": (lambda t: ["--dataset", "cifar"], "unknown --dataset 'cifar'"),
    "unknown optimizer": (lambda t: ["--optimizer", "lbfgs"], "invalid choice: 'lbfgs'"),
    "malformed TOML": (config_file("epochs = = 3\n"), "is not valid TOML"),
    "unknown config key": (config_file("epochz = 3\n"), "unknown key 'epochz'"),
    "checkpoint of another model": (
        lambda t: ["--resume", str(checkpoint_from(t, "--hidden", "8"))],
        "is from a different run: 'model' is"),
    "truncated checkpoint": (truncated_checkpoint, "is truncated or not a checkpoint"),
    "checkpoint with pickled objects": (pickled_checkpoint,
                                        "refused: it contains pickled objects"),
    # reliability round 2
    "negative seed": (lambda t: ["--seed", "-3"], "--seed must be an integer >= 0, got -3"),
    "negative seed in TOML": (config_file("seed = -3\n"), "--seed must be an integer >= 0"),
    "model token without its number": (lambda t: ["--model", "dense"],
                                       "--model: unknown layer 'dense'"),
    "model token with a bad number": (lambda t: ["--model", "densex"],
                                      "--model: unknown layer 'densex'"),
    "bad dropout token": (lambda t: ["--model", "dense8,dropoutx"],
                          "--model: unknown layer 'dropoutx'"),
    "gap on flat data": (lambda t: ["--model", "gap"], "'gap' needs image input"),
    "TOML that is not UTF-8": (lambda t: (t / "c.toml").write_bytes(b"epochs = 1\n#\xff\n") and
                               ["--config", str(t / "c.toml")], "is not UTF-8 text"),
    "the same TOML key twice": (config_file("batch-size = 8\nbatch_size = 9\n"),
                                "'batch-size' and 'batch_size' are the same setting"),
    "checkpoint with malformed metadata": (malformed_metadata,
                                           "malformed checkpoint position"),
    "a model too large for memory": (lambda t: ["--hidden", "99999999"],
                                     "the run needs about"),
    "a label of 10**9": (lambda t: npz(t, y_train=np.full(40, 10 ** 9)), "the run needs about"),
    "an .npz header claiming a huge shape": (huge_npz_header, "is truncated or corrupt: its "
                                                              "header (1000000000000, 3)"),
    "a checkpoint member claiming a huge shape": (huge_checkpoint_member,
                                                  "is truncated or corrupt"),
    "IDX dimensions whose product overflows": (overflowing_idx, "(truncated)"),
    "--checkpoint-dir that is a file": (lambda t: (t / "f").write_text("x") and [
        "--checkpoint-dir", str(t / "f")], "exists and is not a directory"),
    "--checkpoint-dir under a file": (lambda t: (t / "f").write_text("x") and [
        "--checkpoint-dir", str(t / "f" / "c")], "cannot create it"),
    "--metrics that is a directory": (directory_as("--metrics", "m"), "is a directory"),
    "--resume of a directory": (directory_as("--resume", "r"), "is a directory; give a "
                                                               "checkpoint file"),
    "--dataset that is a directory": (directory_as("--dataset", "x.npz"), "is a directory"),
    "features beyond float32": (lambda t: npz(t, x_train=np.full((40, 3), 1e300)),
                                "beyond what float32 computes with"),
}


@pytest.mark.parametrize("row", ROWS)
def test_bad_input_row(tmp_path, row):
    make_flags, message = ROWS[row]
    flags = make_flags(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    result, seconds = run_mpi(4, [*JOB, "--metrics", str(out / "m.jsonl"),
                                  "--checkpoint-dir", str(out / "ckpt"), *flags], timeout=60,
                              DISTBP_CACHE=str(tmp_path / "cache"))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("distbp.train: error: "), result.stderr
    assert message in lines[0]
    assert result.stdout == "" and seconds < 20
    assert list(out.iterdir()) == []  # no metrics file, no checkpoint, nothing half-written
