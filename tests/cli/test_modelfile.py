"""Saved models (distbp.cli.modelfile): train -> save -> load -> predict gives the job's
own final count; checkpoints load too, old ones included; damage is one line."""

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_job

import distbp
from distbp.cli import checkpoint
from distbp.data.synthetic import synthetic

DATA = Path(__file__).parent / "data"


def test_the_round_trip_is_exact(capsys, tmp_path):
    code, _, err = run_job(capsys, "--epochs", "2", "--hidden", "32", "--save-model",
                           str(tmp_path / "m.npz"), "--metrics", str(tmp_path / "m.jsonl"),
                           "--checkpoint-dir", str(tmp_path / "ckpt"))
    assert code == 0, err
    final = json.loads((tmp_path / "m.jsonl").read_text().splitlines()[-1])
    data = synthetic()
    for path in (tmp_path / "m.npz", checkpoint.latest(tmp_path / "ckpt")):
        model = distbp.load_model(path)
        probabilities = model.predict(data.x_test, batch_size=700)
        assert probabilities.shape == (5000, 10)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
        assert int((probabilities.argmax(axis=1) == data.y_test).sum()) == final["test_correct"]


def test_a_checkpoint_from_before_the_restructure_loads():
    model = distbp.load_model(DATA / "before-restructure-adam-step30.npz")
    assert [repr(layer) for layer in model.layers] == ["Dense(32, 16)", "ReLU()",
                                                       "Dense(16, 10)"]
    assert model.task == "probabilities" and model.predict(np.zeros((3, 32))).shape == (3, 10)


def test_a_regression_model_predicts_values(capsys, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 4))
    y = x[:, :2] * 2
    np.savez(tmp_path / "r.npz", x_train=x[:150], y_train=y[:150], x_test=x[150:],
             y_test=y[150:])
    code, _, err = run_job(capsys, "--dataset", str(tmp_path / "r.npz"), "--loss", "mse",
                           "--epochs", "3", "--hidden", "16", "--save-model",
                           str(tmp_path / "m.npz"))
    assert code == 0, err
    model = distbp.load_model(tmp_path / "m.npz")
    assert model.task == "outputs" and model.predict(x[150:]).shape == (50, 2)


def test_a_damaged_model_file_is_one_line(capsys, tmp_path):
    run_job(capsys, "--epochs", "1", "--hidden", "8", "--save-model", str(tmp_path / "m.npz"))
    arrays = dict(np.load(tmp_path / "m.npz"))
    arrays["spec"] = np.array('[{"type": "Evil"}]')
    arrays["checksum"] = np.array(checkpoint.checksum(arrays))
    np.savez(tmp_path / "m.npz", **arrays)
    with pytest.raises(ValueError, match="unknown layer in the model spec"):
        distbp.load_model(tmp_path / "m.npz")
