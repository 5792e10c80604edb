"""Where models come from: the bundled model, the Hugging Face cache and the seed model.

The bottom layer under :mod:`galaxy_explorer.core.hub` (download, local cache) and
:mod:`galaxy_explorer.core.model` (loading), so neither imports the other back. Both
re-export what they used to define (``model.bundled_model_path`` and so on). Code that
looks these up at call time goes through this module's attributes, so a test can
replace them in one place.
"""

from __future__ import annotations

import os
from pathlib import Path

from galaxy_explorer._resources import resource_path

__all__ = ["DEFAULT_HUB_MODEL", "ModelLoadError", "bundled_model_path", "hub_cache_dir"]

DEFAULT_HUB_MODEL = "juppy44/galaxy-clip-finetuned"


class ModelLoadError(Exception):
    """A model could not be found or loaded; the message says which and why."""


def bundled_model_path() -> Path:
    """Folder of the small Galaxy-CLIP model shipped in ``resources/model``."""
    return resource_path("model")


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment at call time."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "huggingface"
    )
    return Path(home).expanduser() / "hub"
