"""``--help`` text: true statements, defaults shown without noise, the environment listed."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

import pytest

from galaxy_explorer.cli import build_parser

ENV_VARS = [
    "GALAXY_EXPLORER_CACHE",
    "GALAXY_EXPLORER_DATA",
    "GALAXY_EXPLORER_LOG",
    "GALAXY_EXPLORER_RESOURCES",
    "HF_HOME",
    "HF_HUB_CACHE",
    "HF_HUB_OFFLINE",
    "HF_ENDPOINT",
    "QT_QPA_PLATFORM",
]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.fixture(scope="module")
def helps() -> dict[str, str]:
    parser = build_parser()
    out = {"": parser.format_help()}
    out.update({name: p.format_help() for name, p in _subparsers(parser).items()})
    return out


def test_every_help_is_free_of_noise(helps):
    assert {"gui", "embed", "query", "similar", "classify", "export", "train"} <= set(helps)
    for name, text in helps.items():
        flat = _flat(text)
        assert "(default: None)" not in flat, name
        assert "(default: False)" not in flat, name
        assert "``" not in text, name
        # one default per option, never "(default: …) (default: …)"
        assert not re.search(r"\(default[^)]*\) \(default", flat), name


def test_defaults_are_shown(helps):
    query = _flat(helps["query"])
    for shown in (
        "(default: 32)",
        "(default: 2)",
        "(default: asinh)",
        "(default: percentile)",
        "(default: 99.5)",
        "cuda > mps > cpu",
    ):
        assert shown in query
    train = _flat(helps["train"])
    assert "(default: 64)" in train and "(default: convnext)" in train


def test_precision_help_says_what_auto_does(helps):
    text = _flat(helps["embed"])
    start = text.index("--precision {auto,fp32,fp16,bf16} ")
    precision = text[start : start + 300]
    assert "fp16 on a GPU" in precision
    assert "bf16 autocast" in precision and "AVX512-BF16" in precision
    assert "else fp32" in precision
    assert "fp32 on CPU" not in text  # what it said before, and it was not true


def test_gui_options_have_help():
    gui = _subparsers(build_parser())["gui"]
    for action in gui._actions:
        assert action.help, action.dest
    text = _flat(gui.format_help())
    assert "compute device" in text and "embedding cache folder" in text
    assert "sample catalogue" in text


def test_epilog_lists_environment_variables(helps):
    epilog = helps[""].split("environment variables:", 1)[1]
    for var in ENV_VARS:
        assert var in epilog, var
    # the block keeps its layout: one variable per line
    assert re.search(r"^\s+GALAXY_EXPLORER_CACHE\s+\S", epilog, re.M)


def test_install_desktop_flags_are_documented(helps):
    text = _flat(helps[""])
    assert "--install-desktop" in text and "--uninstall-desktop" in text


def test_train_module_help_matches(helps):
    """``python -m galaxy_explorer.train.train --help`` uses the same formatter."""
    out = subprocess.run(
        [sys.executable, "-m", "galaxy_explorer.train.train", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0
    assert "``" not in out.stdout and "(default: None)" not in _flat(out.stdout)
    assert "(default: 64)" in _flat(out.stdout)
