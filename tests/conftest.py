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
