"""Checkpoint files (distbp.cli.checkpoint): atomic, checksummed, pruned, refused in one
line when damaged; and checkpoints written before the package restructure still resume."""

from pathlib import Path

import numpy as np
import pytest
from conftest import run_job

from distbp.cli import checkpoint

DATA = Path(__file__).parent / "data"
# the runs that wrote tests/cli/data/before-restructure-*-step30.npz (distbp 0.1.0, serial)
BEFORE = {
    "adam": ["--epochs", "2", "--hidden", "16", "--optimizer", "adam", "--lr", "0.003",
             "--batch-size", "500"],
    "exact": ["--epochs", "2", "--hidden", "16", "--optimizer", "adamw", "--lr", "0.003",
              "--batch-size", "500", "--exact", "--exact-shard-size", "100"],
}


def arrays():
    return {"params": np.arange(5, dtype=np.float32), "position": checkpoint.encode({"step": 3})}


def test_round_trip_keeps_the_newest_k(tmp_path):
    for step in (1, 2, 3, 4):
        checkpoint.save(tmp_path, step, arrays(), keep=2)
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == [
        "ckpt-000000003.npz", "ckpt-000000004.npz"]
    loaded = checkpoint.load(checkpoint.latest(tmp_path))
    np.testing.assert_array_equal(loaded["params"], arrays()["params"])
    assert checkpoint.decode(loaded["position"]) == {"step": 3}
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left


@pytest.mark.parametrize("damage,message", [
    (lambda p: p.write_bytes(p.read_bytes()[:100]), "is truncated or not a checkpoint"),
    (lambda p: np.savez(p, params=np.zeros(2)), "is not a distbp checkpoint (no checksum)"),
    (lambda p: np.savez(p, **{**dict(np.load(p)), "params": np.ones(5, np.float32)}),
     "is corrupt (checksum mismatch)"),
    (lambda p: np.savez(p, **{**dict(np.load(p)), "junk": np.array([{}], dtype=object)}),
     "refused: it contains pickled objects"),
])
def test_damaged_checkpoints_are_refused_in_one_line(tmp_path, damage, message):
    path = checkpoint.save(tmp_path, 7, arrays())
    damage(path)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        checkpoint.load(path)


def final_params(directory):
    return checkpoint.load(checkpoint.latest(directory))["params"]


@pytest.mark.parametrize("kind", ["adam", "exact"])
def test_a_checkpoint_written_before_the_restructure_resumes(capsys, tmp_path, kind):
    flags = BEFORE[kind]
    code, _, err = run_job(capsys, *flags, "--checkpoint-dir", str(tmp_path / "whole"))
    assert code == 0, err
    old = DATA / f"before-restructure-{kind}-step30.npz"
    code, _, err = run_job(capsys, *flags, "--checkpoint-dir", str(tmp_path / "resumed"),
                           "--resume", str(old))
    assert code == 0, err  # fingerprint, layout and reduction state are all accepted
    resumed, whole = final_params(tmp_path / "resumed"), final_params(tmp_path / "whole")
    assert checkpoint.latest(tmp_path / "resumed").name == "ckpt-000000080.npz"
    # bitwise on the machine that wrote the file; another CPU's GEMMs round differently
    np.testing.assert_allclose(resumed, whole, rtol=1e-4, atol=1e-6)
    assert not np.array_equal(resumed, checkpoint.load(old)["params"])  # it trained on


def test_pruning_never_removes_the_checkpoint_just_written(tmp_path):
    for step in (100, 200, 300):
        checkpoint.save(tmp_path, step, arrays(), keep=3)
    written = checkpoint.save(tmp_path, 50, arrays(), keep=2)  # e.g. resumed from an old file
    assert written.exists()
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == [
        "ckpt-000000050.npz", "ckpt-000000300.npz"]
    checkpoint.save(tmp_path, 60, arrays(), keep=1)
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == ["ckpt-000000060.npz"]
