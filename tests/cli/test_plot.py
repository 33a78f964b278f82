"""The plot command draws a PNG from metrics files, and refuses bad input in one line."""

import json

import pytest

from distbp.cli import plot

pytest.importorskip("matplotlib", reason="the plot extra (matplotlib) is not installed")


def write_metrics(path, accuracies):
    records = [{"event": "epoch", "epoch": i + 1, "train_loss": 1 / (i + 1),
                "test_loss": 1.2 / (i + 1), "test_accuracy": a}
               for i, a in enumerate(accuracies)]
    records.append({"event": "summary", "test_accuracy": accuracies[-1]})
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_plot_writes_a_png(tmp_path, capsys):
    write_metrics(tmp_path / "n1.jsonl", [0.5, 0.7, 0.8])
    write_metrics(tmp_path / "n4.jsonl", [0.5, 0.71, 0.8])
    output = tmp_path / "curves.png"
    assert plot.main([str(tmp_path / "n1.jsonl"), str(tmp_path / "n4.jsonl"), "-o",
                      str(output), "--title", "test"]) == 0
    data = output.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10000
    assert capsys.readouterr().out == f"wrote {output}\n"


@pytest.mark.parametrize("content,message", [
    ("", "no epoch records"),
    ("{not json\n", ":1: not a JSON line"),
])
def test_plot_bad_metrics(tmp_path, capsys, content, message):
    (tmp_path / "m.jsonl").write_text(content)
    assert plot.main([str(tmp_path / "m.jsonl"), "-o", str(tmp_path / "c.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "c.png").exists()


def test_plot_draws_rmse_for_regression_runs(tmp_path, monkeypatch):
    records = [{"event": "epoch", "epoch": i + 1, "train_loss": 1 / (i + 1),
                "test_loss": 1.2 / (i + 1), "test_mse": 1.2 / (i + 1),
                "test_rmse": (1.2 / (i + 1)) ** 0.5} for i in range(3)]
    (tmp_path / "r.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    titles = []
    monkeypatch.setattr("matplotlib.axes.Axes.set",
                        lambda self, **kw: titles.append(kw.get("title")))
    assert plot.main([str(tmp_path / "r.jsonl"), "-o", str(tmp_path / "r.png")]) == 0
    assert titles == ["loss", "test RMSE"] and (tmp_path / "r.png").exists()
