"""The README's bad-input table: each row gives one clear line and exit code 2 under
`mpirun -n 4`, on every rank's behalf (no rank left waiting), and no partial files."""

import numpy as np
import pytest
from idx_helpers import corrupt
from mpi_helpers import run_mpi

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
}


@pytest.mark.parametrize("row", ROWS)
def test_bad_input_row(tmp_path, row):
    make_flags, message = ROWS[row]
    flags = make_flags(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    result, seconds = run_mpi(4, [*JOB, *flags, "--metrics", str(out / "m.jsonl"),
                                  "--checkpoint-dir", str(out / "ckpt")], timeout=60,
                              DISTBP_CACHE=str(tmp_path / "cache"))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("distbp.train: error: "), result.stderr
    assert message in lines[0]
    assert result.stdout == "" and seconds < 20
    assert list(out.iterdir()) == []  # no metrics file, no checkpoint, nothing half-written
