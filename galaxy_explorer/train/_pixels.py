"""Pixels for training: cutouts at the model's input size, as the app's adapter makes them.

The lowest layer of :mod:`galaxy_explorer.train`: both the file loader
(:mod:`galaxy_explorer.train.data`) and the generator bridge
(:mod:`galaxy_explorer.train._synth_bridge`) use it, and it imports neither.
"""

from __future__ import annotations

import numpy as np


def resize_uint8(rgb: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8 → (3, size, size) uint8: shortest edge to ``size`` (bicubic,
    antialiased), centre crop — the same geometry as the app's model adapter."""
    import torch

    from galaxy_explorer.core.model import resize_and_crop

    if rgb.ndim == 2:
        rgb = np.stack([rgb] * 3, axis=-1)
    x = resize_and_crop(np.asarray(rgb, dtype=np.uint8), size, size)
    return x.round().clamp(0, 255).to(torch.uint8).numpy()
