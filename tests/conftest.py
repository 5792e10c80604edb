from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).parent))

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path, monkeypatch):
    """Never touch the real user cache / data folders."""
    monkeypatch.setenv("GALAXY_EXPLORER_CACHE", str(tmp_path / "_user_cache"))
    monkeypatch.setenv("GALAXY_EXPLORER_DATA", str(tmp_path / "_user_data"))


from helpers import make_cutout_folder, make_tiny_clip  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """Folder of a tiny random CLIP saved with save_pretrained (session-wide, read-only)."""
    return make_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))


@pytest.fixture
def cutouts(tmp_path) -> Path:
    """A fresh folder with 4 FITS and 4 JPEG cutouts."""
    return make_cutout_folder(tmp_path / "cutouts")


@pytest.fixture
def run(tiny_model, tmp_path, capsys):
    """The command line in this process, on the tiny model.

    ``run(command, target, *rest, model=True, cache_dir=None)`` → ``(exit code, stdout,
    stderr)``. ``--model <tiny>`` (unless ``model`` is false) and ``--cache`` (``tmp_path /
    "cache"`` unless ``cache_dir``) go after the first two arguments. Modules whose commands
    need another shape (``tests/test_cli.py``, ``tests/test_store_safety.py``) define their
    own ``run``.
    """
    from galaxy_explorer.cli import main

    cache = tmp_path / "cache"

    def _run(*args, model=True, cache_dir=None):
        extra = ["--model", str(tiny_model)] if model else []
        code = main([*args[:2], *extra, "--cache", str(cache_dir or cache), *args[2:]])
        out = capsys.readouterr()
        return code, out.out, out.err

    return _run
