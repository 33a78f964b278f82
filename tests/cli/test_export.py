"""ONNX export (distbp.cli.export): the exported file, run in onnxruntime on real inputs,
gives model.predict's outputs to 1e-5 in float32, for MLPs, CNNs and recurrent networks;
every layer type has an ONNX form; bad input is one line and leaves no file."""

import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import run_job

import distbp
from distbp.cli import export
from distbp.cli.checkpoint import latest
from distbp.data.idx import open_idx

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
onnxruntime = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")

FASHION = Path("/usr/share/datasets/fashion-mnist")
needs_fashion = pytest.mark.skipif(
    not (FASHION / "t10k-images-idx3-ubyte.gz").exists(),
    reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")


def run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rows = x.reshape(len(x), -1).astype(np.float32)  # the model's input: flat rows
    return session.run(None, {"input": rows})[0]


def train_and_export(capsys, tmp_path: Path, dataset: Path, *flags: str) -> Path:
    code, _, err = run_job(capsys, "--dataset", str(dataset), "--epochs", "2",
                           "--optimizer", "adam", "--lr", "0.003",
                           "--save-model", str(tmp_path / "m.npz"), *flags)
    assert code == 0, err
    assert export.main([str(tmp_path / "m.npz"), "-o", str(tmp_path / "m.onnx")]) == 0
    return tmp_path / "m.onnx"


@pytest.fixture(scope="module")
def fashion_subset(tmp_path_factory) -> Path:
    """4000 training and 1000 test images of the real Fashion-MNIST, as raw uint8."""
    cache = tmp_path_factory.mktemp("cache")
    images = {part: open_idx(FASHION / f"{part}-images-idx3-ubyte.gz", 3, cache)
              for part in ("train", "t10k")}
    labels = {part: open_idx(FASHION / f"{part}-labels-idx1-ubyte.gz", 1, cache)
              for part in ("train", "t10k")}
    path = cache / "fashion-subset.npz"
    np.savez(path, x_train=images["train"][:4000], y_train=labels["train"][:4000],
             x_test=images["t10k"][:1000], y_test=labels["t10k"][:1000])
    return path


@needs_fashion
@pytest.mark.parametrize("spec", ["mlp", "conv8,bn,relu,pool2,conv16,relu,pool2,dense32,relu",
                                  "lstm32", "rnn16seq,lstm16"])
def test_onnxruntime_matches_predict_on_real_images(capsys, tmp_path, fashion_subset, spec):
    path = train_and_export(capsys, tmp_path, fashion_subset, "--model", spec, "--hidden", "64")
    data = np.load(fashion_subset)
    x, y = data["x_test"], data["y_test"]
    expected = distbp.load_model(tmp_path / "m.npz").predict(x)
    got = run_onnx(path, x)
    assert got.shape == expected.shape == (1000, 10)
    assert np.max(np.abs(got - expected)) <= 1e-5
    correct = int((expected.argmax(axis=1) == y).sum())
    assert correct > 300  # a trained model (chance is 100), not a near-uniform one
    assert int((got.argmax(axis=1) == y).sum()) == correct


def test_every_layer_type_has_an_onnx_form(capsys, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((700, 12, 12)).astype(np.float32) * 255
    y = (x[:, :6].mean(axis=(1, 2)) > 127.5) + 2 * (x[:, :, :6].mean(axis=(1, 2)) > 127.5)
    np.savez(tmp_path / "d.npz", x_train=x[:600], y_train=y[:600], x_test=x[600:],
             y_test=y[600:])
    covered = set()
    for spec in ("conv4s2p1,bn,leakyrelu,pool2,conv6k3,tanh,gap,dense16,bn,sigmoid,dropout0.3",
                 "conv3,relu,flatten,dense8", "lstm8seq,rnn6seq,rnn5", "rnn7,dense6,tanh"):
        path = train_and_export(capsys, tmp_path, tmp_path / "d.npz", "--model", spec,
                                "--dtype", "float64")
        model = distbp.load_model(tmp_path / "m.npz")
        covered |= {type(layer) for layer in model.layers}
        got, expected = run_onnx(path, x[600:]), model.copy(np.float32).predict(x[600:])
        assert np.max(np.abs(got - expected)) <= 1e-5, spec
    assert covered == set(export.EXPORTERS)


def test_regression_checkpoints_and_any_batch_size(capsys, tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 5))
    np.savez(tmp_path / "r.npz", x_train=x[:250], y_train=x[:250, :2] * 3, x_test=x[250:],
             y_test=x[250:, :2] * 3)
    path = train_and_export(capsys, tmp_path, tmp_path / "r.npz", "--loss", "mse",
                            "--hidden", "16", "--checkpoint-dir", str(tmp_path / "ckpt"))
    model = distbp.load_model(tmp_path / "m.npz")
    proto = onnx.load(path)
    assert [o.name for o in proto.graph.output] == ["outputs"]
    for rows in (1, 7, 50):
        got = run_onnx(path, x[250:250 + rows])
        assert got.shape == (rows, 2)
        assert np.max(np.abs(got - model.predict(x[250:250 + rows]))) <= 1e-5
    assert export.main([str(latest(tmp_path / "ckpt")), "-o", str(tmp_path / "c.onnx")]) == 0
    assert np.max(np.abs(run_onnx(tmp_path / "c.onnx", x[250:]) - model.predict(x[250:]))) \
        <= 1e-5


def test_the_command_reports_what_it_wrote_and_checked(capsys, tmp_path):
    run_job(capsys, "--epochs", "1", "--hidden", "8", "--save-model", str(tmp_path / "m.npz"))
    assert export.main([str(tmp_path / "m.npz"), "-o", str(tmp_path / "m.onnx")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"wrote {tmp_path / 'm.onnx'}: 3 layers")
    assert "input 'input' (batch, 32) float32, output 'probabilities'" in out[0]
    difference = float(out[1].split("model.predict ")[1].split()[0])
    assert out[1].startswith("onnxruntime ") and difference <= 1e-5


@pytest.mark.parametrize("case", ["missing", "not a model", "no onnx", "unwritable"])
def test_bad_input_is_one_line_and_leaves_no_file(capsys, tmp_path, monkeypatch, case):
    model, output = tmp_path / "m.npz", tmp_path / "out" / "m.onnx"
    output.parent.mkdir()
    if case != "missing":
        run_job(capsys, "--epochs", "1", "--hidden", "8", "--save-model", str(model))
    if case == "not a model":
        model.write_bytes(b"hello")
    if case == "no onnx":
        monkeypatch.setitem(sys.modules, "onnx", None)
    if case == "unwritable":
        output = tmp_path / "no-such-dir" / "m.onnx"
    assert export.main([str(model), "-o", str(output)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("distbp.export: error: "), err
    expected = {"missing": "does not exist", "not a model": "is truncated or not a model file",
                "no onnx": "pip install 'distbp[onnx]'", "unwritable": "cannot write"}[case]
    assert expected in err[0]
    if output.parent.exists():
        assert list(output.parent.iterdir()) == []
