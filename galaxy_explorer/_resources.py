"""Where the bundled resources (model, sample catalogue, default labels) live.

In a source checkout (and an editable install) that is the repository's ``resources/``
folder; an installed wheel carries the same files as ``galaxy_explorer/resources``.
``$GALAXY_EXPLORER_RESOURCES`` overrides both.
"""

from __future__ import annotations

import os
from pathlib import Path


def resources_dir() -> Path:
    """The folder holding ``model/``, ``sample/`` and ``default_labels.json``."""
    env = os.environ.get("GALAXY_EXPLORER_RESOURCES")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "resources", here / "resources"):
        if candidate.is_dir():
            return candidate
    return here.parent / "resources"


def resource_path(*parts: str) -> Path:
    return resources_dir().joinpath(*parts)
