"""Where the bundled resources (model, sample catalogue, default labels) live."""

from __future__ import annotations

import os
from pathlib import Path


def resources_dir() -> Path:
    """The ``resources/`` folder: ``$GALAXY_EXPLORER_RESOURCES`` or the one beside the package."""
    env = os.environ.get("GALAXY_EXPLORER_RESOURCES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "resources"


def resource_path(*parts: str) -> Path:
    return resources_dir().joinpath(*parts)
