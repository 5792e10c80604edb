"""Image preprocessing settings of a model, read one way for inference and training.

A CLIP-style model folder describes its preprocessing in ``preprocessor_config.json`` or
``processor_config.json``; a processor object in memory carries the same settings. Both go
through :func:`image_config_from_dict`, so the app's adapter
(:class:`galaxy_explorer.core.model.ClipAdapter`) and the trainer
(:mod:`galaxy_explorer.train`) agree on size, crop, mean and std. Qt-free and torch-free.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: CLIP's normalisation, used where a config gives none
CLIP_MEAN: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)

#: the processor-config files of a model folder, in order of precedence
PROCESSOR_FILES: tuple[str, ...] = ("preprocessor_config.json", "processor_config.json")


def _size_from(value: Any, default: int) -> int:
    if isinstance(value, Mapping):
        for key in ("shortest_edge", "height", "width"):
            if key in value and value[key]:
                return int(value[key])
        return default
    if isinstance(value, (int, float)):
        return int(value)
    for key in ("shortest_edge", "height", "width"):  # SizeDict-like objects
        if getattr(value, key, None):
            return int(getattr(value, key))
    return default


def image_config_from_dict(cfg: Mapping[str, Any], model_config: Any = None) -> dict[str, Any]:
    """Preprocessing settings from an image-processor config, with the model's image size.

    Parameters
    ----------
    cfg : mapping
        The image processor's settings (``size``, ``crop_size``, ``do_center_crop``,
        ``image_mean``, ``image_std``, ``rescale_factor``), as in ``preprocessor_config.json``.
    model_config : object, optional
        The model's config; its ``vision_config.image_size`` (or ``image_size``) is the
        fallback size (224 without one).

    Returns
    -------
    dict
        ``resize`` (shortest edge), ``crop`` (square side the model sees), ``center_crop``,
        ``mean``, ``std``, ``rescale`` and ``model_size``. Part of the model key: the same
        settings always give the same dict.
    """
    vision = getattr(model_config, "vision_config", model_config)
    model_size = int(getattr(vision, "image_size", 224) or 224)
    crop = _size_from(cfg.get("crop_size"), model_size) if cfg.get("do_center_crop", True) else None
    size = _size_from(cfg.get("size"), crop or model_size)
    return {
        "resize": size,
        "crop": crop or size,
        "center_crop": bool(cfg.get("do_center_crop", True)),
        "mean": [float(x) for x in (cfg.get("image_mean") or CLIP_MEAN)],
        "std": [float(x) for x in (cfg.get("image_std") or CLIP_STD)],
        "rescale": float(cfg.get("rescale_factor", 1 / 255)),
        "model_size": model_size,
    }


def read_image_config(folder: Path, model_config: Any = None) -> dict[str, Any]:
    """Preprocessing settings of the model folder ``folder`` (see :func:`image_config_from_dict`).

    ``preprocessor_config.json`` takes precedence over ``processor_config.json``; the image
    processor's part of a combined processor config is used.
    """
    cfg: dict[str, Any] = {}
    for name in PROCESSOR_FILES:
        f = Path(folder) / name
        if f.exists():
            data = json.loads(f.read_text())
            data = data.get("image_processor", data)
            cfg = {**data, **cfg}
    return image_config_from_dict(cfg, model_config)


def image_config_from_processor(processor: Any, model_config: Any = None) -> dict[str, Any]:
    """Preprocessing settings of a processor (or image processor) object in memory.

    The settings are those its ``save_pretrained`` would write, so a model trained with
    this processor and then loaded from its folder is fed the same pixels.
    """
    ip = getattr(processor, "image_processor", processor)
    to_dict = getattr(ip, "to_dict", None)
    cfg: dict[str, Any] = dict(to_dict()) if callable(to_dict) else {}
    if not cfg:
        keys = ("size", "crop_size", "do_center_crop", "image_mean", "image_std", "rescale_factor")
        cfg = {k: getattr(ip, k) for k in keys if getattr(ip, k, None) is not None}
    return image_config_from_dict(cfg, model_config)


__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "image_config_from_dict",
    "image_config_from_processor",
    "read_image_config",
]
