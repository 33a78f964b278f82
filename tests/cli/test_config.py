"""Flags and TOML config files (distbp.cli.config): flags override the file, and every
bad value is one line and exit code 2."""

import subprocess
import sys

import pytest
from conftest import run_job as run

from distbp.cli.config import GROUPS, build_parser, parse_every


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
    (["--exact", "--grad-compression", "fp16"], "--exact is bitwise exact at any rank count; "
     "--grad-compression fp16 rounds the gradients: choose one"),
    (["--grad-compression", "int8"], "argument --grad-compression: invalid choice: 'int8'"),
    (["--exact", "--grad-compression", "powersgd"], "--grad-compression powersgd rounds"),
    (["--powersgd-rank", "2"], "--powersgd-rank needs --grad-compression powersgd"),
    (["--grad-compression", "bf16", "--powersgd-warmup", "2"],
     "--powersgd-warmup needs --grad-compression powersgd"),
    (["--grad-compression", "powersgd", "--powersgd-rank", "0"],
     "--powersgd-rank must be >= 1, got 0"),
    (["--grad-compression", "powersgd", "--powersgd-warmup", "-1"],
     "--powersgd-warmup must be >= 0, got -1"),
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


def test_help_groups_the_flags_and_shows_every_default():
    result = subprocess.run([sys.executable, "-m", "distbp.train", "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "an MLP" not in result.stdout
    text = " ".join(result.stdout.split())
    headers = [f"{name}:" for name in GROUPS]
    assert all(text.count(header) == 1 for header in headers), text  # one section each
    assert [text.index(header) for header in headers] == sorted(
        text.index(header) for header in headers)
    parser = build_parser()
    flags = {a.option_strings[0] for a in parser._actions if a.dest != "help"}
    assert flags == {flag for group in GROUPS.values() for flag in group}  # all grouped
    for action in parser._actions:
        if action.dest != "help":
            assert f"(default: {action.default})" in text, action.option_strings


def test_powersgd_settings_default_only_when_unset():
    from distbp.cli.config import parse_args
    from distbp.dist.powersgd import DEFAULT_RANK, DEFAULT_WARMUP

    zero = parse_args(["--grad-compression", "powersgd", "--powersgd-warmup", "0"])
    assert (zero.powersgd_rank, zero.powersgd_warmup) == (DEFAULT_RANK, 0)
    unset = parse_args(["--grad-compression", "powersgd"])
    assert (unset.powersgd_rank, unset.powersgd_warmup) == (DEFAULT_RANK, DEFAULT_WARMUP)
