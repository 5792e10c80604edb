"""The one source of default zero-shot labels and prompt templates.

Both the command line (``classify`` / ``export`` without ``--templates``) and the desktop
app read them from ``resources/default_labels.json``, so the two give the same
probabilities for the same labels.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = [
    "UNCERTAIN",
    "LabelDef",
    "default_labels_file",
    "default_templates",
    "load_default_labels",
]

#: The predicted label of an image whose best probability is below the threshold.
UNCERTAIN = "uncertain"


@dataclass
class LabelDef:
    """One zero-shot class: a short name and an optional prompt (defaults to the name).

    Parameters
    ----------
    name : str
        What the class is called (bins, legend, ``p_<name>`` CSV columns).
    prompt : str
        The text the model compares each image with; empty means the name.
    """

    name: str
    prompt: str = ""

    @property
    def text(self) -> str:
        """The text put into the prompt templates."""
        return self.prompt.strip() or self.name


_FALLBACK_LABELS = (
    ("spiral", "a spiral galaxy"),
    ("elliptical", "an elliptical galaxy"),
    ("edge-on", "an edge-on disk galaxy"),
    ("merger", "merging galaxies"),
)
_FALLBACK_TEMPLATES = ("{}",)


def default_labels_file() -> Path:
    """``default_labels.json`` among the bundled resources."""
    from galaxy_explorer._resources import resources_dir

    return resources_dir() / "default_labels.json"


def _read(path: str) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        labels = tuple((str(d["name"]), str(d.get("prompt", ""))) for d in data["labels"])
        templates = tuple(str(t) for t in data.get("templates", ["{}"]) if str(t).strip())
        bad = [t for t in templates if "{}" not in t]
        if bad:
            raise ValueError(f"template {bad[0]!r} has no {{}} placeholder")
        if labels:
            return labels, templates or _FALLBACK_TEMPLATES
        raise ValueError("no labels")
    except Exception as exc:  # a broken resource must not stop the app or the CLI
        log.warning("could not read default labels %s: %s", path, exc)
    return _FALLBACK_LABELS, _FALLBACK_TEMPLATES


def load_default_labels(path: Path | None = None) -> tuple[list[LabelDef], list[str]]:
    """The default zero-shot classes and prompt templates.

    Parameters
    ----------
    path : Path, optional
        A labels file like ``resources/default_labels.json`` (the bundled one by default).

    Returns
    -------
    labels : list of LabelDef
    templates : list of str
        Each contains ``{}`` where the label's prompt goes. Built-ins on any error.
    """
    labels, templates = _read(str(path or default_labels_file()))
    return [LabelDef(n, p) for n, p in labels], list(templates)


def default_templates() -> list[str]:
    """The default prompt templates (see :func:`load_default_labels`)."""
    return load_default_labels()[1]
