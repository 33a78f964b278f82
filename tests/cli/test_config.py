"""Flags and TOML config files (distbp.cli.config): flags override the file, and every
bad value is one line and exit code 2."""

import pytest
from conftest import run_job as run

from distbp.cli.config import parse_args, parse_every


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


@pytest.mark.parametrize("flags,message", [
    (["--epochs", "0"], "--epochs must be a positive integer, got 0"),
    (["--batch-size", "x"], "argument --batch-size: invalid int value: 'x'"),
    (["--hidden", "12,a"], "--hidden must be comma-separated integers, got '12,a'"),
    (["--hidden", "12,0"], "--hidden sizes must be > 0"),
    (["--lr", "nan"], "--lr must be a finite number > 0, got nan"),
    (["--lr", "0"], "--lr must be a finite number > 0, got 0.0"),
    (["--dataset", "imagenet"], "unknown --dataset 'imagenet'"),
    (["--metrics", "/nonexistent/dir/m.jsonl"], "--metrics: directory /nonexistent/dir"),
    (["--config", "/nonexistent.toml"], "cannot read config file /nonexistent.toml"),
    (["--nesterov", "--momentum", "0"], "--nesterov needs --momentum > 0"),
    (["--drop-last", "--batch-size", "30000"], "--drop-last with batch size 30000"),
    (["--loss", "mse"], "--loss mse needs float targets, but synthetic's y_train holds integer"),
    (["--model", "lstm0"], "--model: 'lstm0' needs a width > 0"),
    (["--model", "lstmx"], "--model: unknown layer 'lstmx'"),
    (["--model", "rnn8"], "--model: 'rnn8' needs sequences (time, features) or square images"),
    (["--clip-grad-norm", "0"], "--clip-grad-norm must be a finite number > 0, got 0.0"),
])
def test_bad_flags_give_one_line_and_exit_2(capsys, flags, message):
    code, out, err = run(capsys, *flags)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err, err


def test_checkpoint_every_in_steps_or_epochs():
    assert parse_every("500") == (500, 0)
    assert parse_every(" 2epochs") == (0, 2) and parse_every("1epoch") == (0, 1)
    with pytest.raises(ValueError, match="--checkpoint-every must be N"):
        parse_every("0")
