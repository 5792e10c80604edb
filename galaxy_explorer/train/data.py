"""Training data for contrastive fine-tuning: image–caption pairs from files or the generator.

Two sources feed :mod:`galaxy_explorer.train.train`:

* a folder of images plus a CSV with ``path,caption`` (or ``path,label``; labels become
  captions through the templates of :mod:`galaxy_explorer.train.captions`), and
* the synthetic galaxy generator of :mod:`galaxy_explorer.train.synth`, rendered straight to
  memory (no files).

Both end as a :class:`PairSet`: uint8 image tensors at the model's input size (resized and
centre-cropped the way :class:`galaxy_explorer.core.model.ClipAdapter` does it, so training
and inference see the same pixels), captions, and optional class labels. Augmentation and
normalisation happen per batch on tensors (:func:`augment`, :func:`normalize`).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

# the preprocessing settings are read as the app's model adapter reads them (re-exported)
from galaxy_explorer.core.preprocess import CLIP_MEAN as CLIP_MEAN
from galaxy_explorer.core.preprocess import CLIP_STD as CLIP_STD
from galaxy_explorer.core.preprocess import image_config_from_processor

# re-exported: the pixel geometry lives one layer down, shared with the generator bridge
from galaxy_explorer.train._pixels import resize_uint8 as resize_uint8

if TYPE_CHECKING:  # pragma: no cover
    import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageConfig:
    """How images are turned into model input (read from the model's image processor).

    Attributes
    ----------
    size : int
        Side of the square the vision tower sees.
    mean, std : tuple of float
        Per-channel normalisation after scaling to [0, 1].
    """

    size: int = 224
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD

    @classmethod
    def from_processor(cls, processor: Any, model_config: Any = None) -> ImageConfig:
        """Read size / mean / std from a (CLIP-style) processor or image processor.

        Through :func:`galaxy_explorer.core.preprocess.image_config_from_processor`, the reader
        the app's model adapter uses for the saved model: ``size`` is the side the adapter
        feeds the model (the centre crop, or the resize where the processor does not crop).
        """
        cfg = image_config_from_processor(processor, model_config)
        return cls(
            size=int(cfg["crop"]),
            mean=tuple(cfg["mean"]),  # type: ignore[arg-type]
            std=tuple(cfg["std"]),  # type: ignore[arg-type]
        )


@dataclass
class PairSet:
    """Image–caption pairs held in memory.

    Attributes
    ----------
    images : torch.Tensor
        (N, 3, S, S) uint8.
    captions : list of str
    labels : list of str or None
        Class per image where known (synthetic data, ``path,label`` CSVs), else None.
    """

    images: torch.Tensor
    captions: list[str]
    labels: list[str] | None = None
    paths: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.captions)

    def subset(self, idx: Sequence[int] | np.ndarray) -> PairSet:
        idx = [int(i) for i in idx]
        return PairSet(
            images=self.images[idx],
            captions=[self.captions[i] for i in idx],
            labels=[self.labels[i] for i in idx] if self.labels is not None else None,
            paths=[self.paths[i] for i in idx] if self.paths else [],
        )


# ----------------------------------------------------------------------------- pixels
def normalize(images: torch.Tensor, cfg: ImageConfig) -> torch.Tensor:
    """uint8 (B, 3, S, S) → float32 normalised model input."""
    import torch

    mean = torch.tensor(cfg.mean, dtype=torch.float32, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(cfg.std, dtype=torch.float32, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


def augment(
    images: torch.Tensor, generator: torch.Generator, *, strength: float = 1.0
) -> torch.Tensor:
    """Random label-preserving augmentation of a uint8 batch (returns float in [0, 255]).

    Galaxies have no preferred orientation, so: random flips and 90° rotations, a small
    random zoom / shift (resized crop of 80–100 % of the side), and mild brightness /
    contrast / per-channel gain jitter (survey calibration differs). ``strength`` = 0
    switches augmentation off.
    """
    import torch
    import torch.nn.functional as F

    x = images.float()
    if strength <= 0:
        return x
    b, _, s, _ = x.shape
    dev = x.device

    def rnd(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator).to(dev)

    # flips and quarter turns (per sample)
    flip = rnd(b) < 0.5
    x = torch.where(flip.view(b, 1, 1, 1), x.flip(-1), x)
    k = (rnd(b) * 4).long().clamp(max=3)
    for q in (1, 2, 3):
        m = k == q
        if m.any():
            x[m] = torch.rot90(x[m], q, dims=(-2, -1))
    # random resized crop via affine grid (zoom 1.0–1.25, shift within the margin)
    zoom = 1.0 / (1.0 + 0.25 * strength * rnd(b))  # fraction of the side kept
    shift = (1 - zoom)[:, None] * (rnd(b, 2) * 2 - 1)
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, 0, 0] = zoom
    theta[:, 1, 1] = zoom
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    # photometric jitter
    gain = 1 + 0.15 * strength * (rnd(b, 1, 1, 1) * 2 - 1)
    chan = 1 + 0.06 * strength * (rnd(b, 3, 1, 1) * 2 - 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    contrast = 1 + 0.15 * strength * (rnd(b, 1, 1, 1) * 2 - 1)
    x = ((x - mean) * contrast + mean) * gain * chan
    return x.clamp(0, 255)


# ----------------------------------------------------------------------------- files
def load_rgb_any(path: Path) -> np.ndarray:
    """Read any supported image file as (H, W, 3) uint8 via the app's loader."""
    from galaxy_explorer.core.imaging import load_rgb

    return load_rgb(path)


def _default_label_captioner() -> Callable[[str, np.random.Generator], str]:
    """Label → caption through the caption templates (falls back to simple ones)."""
    try:
        from galaxy_explorer.train import captions as _captions

        fn = getattr(_captions, "caption_for_label", None)
        if fn is not None:
            return lambda label, rng: str(fn(label, rng=rng))
    except Exception as exc:  # noqa: BLE001 - captions module optional here
        log.debug("captions module unavailable: %s", exc)
    templates = ["{}", "a {} galaxy", "an image of a {} galaxy", "a galaxy cutout showing a {}"]
    return lambda label, rng: templates[int(rng.integers(len(templates)))].format(label)


def read_pairs_csv(
    csv_path: Path, root: Path | None = None
) -> tuple[list[Path], list[str] | None, list[str] | None]:
    """Read a ``path,caption`` or ``path,label`` CSV (header required; ``#`` lines skipped).

    Relative paths are resolved against ``root`` (default: the CSV's folder). A CSV may have
    both ``caption`` and ``label`` columns.

    Returns
    -------
    paths, captions or None, labels or None
    """
    csv_path = Path(csv_path)
    root = Path(root) if root is not None else csv_path.parent
    with open(csv_path, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(line for line in fh if not line.startswith("#"))]
    if not rows:
        raise ValueError(f"{csv_path}: no rows")
    cols = {c.strip().lower(): c for c in rows[0].keys() if c}
    pcol = cols.get("path") or cols.get("file") or cols.get("filename")
    if pcol is None:
        raise ValueError(f"{csv_path}: needs a 'path' column (found {', '.join(cols)})")
    ccol = cols.get("caption") or cols.get("text")
    lcol = cols.get("label") or cols.get("class")
    if ccol is None and lcol is None:
        raise ValueError(
            f"{csv_path}: needs a 'caption' or a 'label' column (found {', '.join(cols)})"
        )
    paths = [(root / r[pcol]) if not Path(r[pcol]).is_absolute() else Path(r[pcol]) for r in rows]
    caps = [r[ccol].strip() for r in rows] if ccol else None
    labels = [r[lcol].strip() for r in rows] if lcol else None
    return paths, caps, labels


def load_folder_pairs(
    csv_path: Path, size: int, *, root: Path | None = None, seed: int = 0, progress: bool = False
) -> PairSet:
    """Load the images listed in a CSV into memory at the model's input size.

    Rows whose image cannot be read are skipped with a warning. Labels without captions
    become captions through the caption templates (a fixed draw per row, seeded).
    """
    import torch

    paths, caps, labels = read_pairs_csv(csv_path, root)
    rng = np.random.default_rng(seed)
    if caps is None:
        assert labels is not None
        captioner = _default_label_captioner()
        caps = [captioner(lab, rng) for lab in labels]
    imgs: list[np.ndarray] = []
    keep: list[int] = []
    it: Any = range(len(paths))
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="loading images", unit="img", leave=False)
    for i in it:
        try:
            imgs.append(resize_uint8(load_rgb_any(paths[i]), size))
            keep.append(i)
        except Exception as exc:  # noqa: BLE001 - skip unreadable inputs, keep going
            log.warning("skipping %s: %s", paths[i], exc)
    if not keep:
        raise ValueError(f"{csv_path}: none of the {len(paths)} images could be read")
    return PairSet(
        images=torch.from_numpy(np.stack(imgs)),
        captions=[caps[i] for i in keep],
        labels=[labels[i] for i in keep] if labels is not None else None,
        paths=[str(paths[i]) for i in keep],
    )


# ----------------------------------------------------------------------------- synthetic
def synthetic_pairs(
    n: int,
    size: int,
    *,
    seed: int,
    render_sizes: Sequence[int] | None = None,
    progress: bool = False,
    workers: int = 1,
    classes: Sequence[str] | None = None,
    app_render_fraction: float = 0.0,
    label_caption_fraction: float = 0.0,
) -> PairSet:
    """Render ``n`` synthetic galaxies with captions straight to memory (no files).

    Uses :mod:`galaxy_explorer.train.synth` (images, true class) and its captions
    (:func:`galaxy_explorer.train.captions.caption_for`, drawn from the true parameters).
    ``render_sizes`` are the generator's cutout sizes (cycling; default ``size``); larger
    renders are resized like real cutouts are at inference. ``app_render_fraction`` of the
    images are rendered from their bands the way the app renders FITS files;
    ``label_caption_fraction`` get a short class-name caption instead of a detailed one.
    """
    import torch

    from galaxy_explorer.train import _synth_bridge

    imgs, caps, labels = _synth_bridge.render(
        n,
        size,
        seed=seed,
        render_sizes=render_sizes,
        progress=progress,
        workers=workers,
        classes=classes,
        app_render_fraction=app_render_fraction,
        label_caption_fraction=label_caption_fraction,
    )
    imgs = np.ascontiguousarray(imgs.transpose(0, 3, 1, 2))
    return PairSet(images=torch.from_numpy(imgs), captions=caps, labels=labels)
