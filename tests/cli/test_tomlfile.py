"""TOML config files (distbp.cli.tomlfile): flags override the file; bad files are one
line and exit 2."""

import pytest
from conftest import run_job as run

from distbp.cli.config import parse_args
from distbp.cli.tomlfile import read_toml


def test_config_file_with_flags_overriding(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('hidden = [64, 32]\nepochs = 3\nlr = 0.2\noptimizer = "adam"\n'
                      'batch-size = 50\ndrop_last = true\n')
    args = parse_args(["--config", str(config), "--epochs", "5"])
    assert args.hidden == [64, 32] and args.epochs == 5 and args.lr == 0.2
    assert args.optimizer == "adam" and args.batch_size == 50 and args.drop_last


@pytest.mark.parametrize("content,message", [
    ("epochs = 2\nwidth = 3\n", "unknown key 'width'"),
    ("epochs = 2.5\n", "'epochs' must be an integer, got 2.5"),
    ('optimizer = "rmsprop"\n', "'optimizer' must be one of sgd, adam, adamw, got 'rmsprop'"),
    ("epochs = \n", "is not valid TOML"),
])
def test_bad_config_files(tmp_path, capsys, content, message):
    config = tmp_path / "bad.toml"
    config.write_text(content)
    code, out, err = run(capsys, "--config", str(config))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err and err.startswith("distbp.train: error: ")


def test_read_toml_gives_the_table_or_one_line(tmp_path):
    (tmp_path / "ok.toml").write_text('lr = 0.5\nhidden = [4, 2]\n')
    assert read_toml(str(tmp_path / "ok.toml")) == {"lr": 0.5, "hidden": [4, 2]}
    (tmp_path / "bad.toml").write_bytes(b"lr = \xff\n")
    with pytest.raises(ValueError, match="is not UTF-8 text"):
        read_toml(str(tmp_path / "bad.toml"))
