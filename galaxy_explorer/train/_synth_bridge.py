"""Render synthetic image–caption pairs in memory from :mod:`galaxy_explorer.train.synth`.

Kept apart from :mod:`galaxy_explorer.train.data` so the generator's API is used in one place.
:mod:`~galaxy_explorer.train.data` imports this module; this module never imports it back.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def app_render(bands: np.ndarray) -> np.ndarray:
    """Render g, r, z bands exactly as the app renders a 3-band FITS file (default settings).

    Training on a share of these makes the model see FITS cutouts the way the app shows them
    to it, not only the survey-style composites of :func:`galaxy_explorer.train.synth.to_rgb`.
    """
    from pathlib import Path

    from galaxy_explorer.core import imaging

    # the synth's row 0 is the top; FITS files (and the app's reader) have row 0 at the bottom
    fits_like = np.ascontiguousarray(bands[:, ::-1, :])
    return imaging._render_fits(Path("synthetic.fits"), fits_like, imaging.RenderSettings())


def _uses_app_render(i: int, fraction: float) -> bool:
    return fraction > 0 and (i * 0.6180339887498949 + 0.5) % 1.0 < fraction


def _chunk(
    args: tuple[int, int, int, tuple[int, ...], int, tuple[str, ...] | None, float],
) -> tuple[np.ndarray, list[str], list[str]]:
    start, n, size, render_sizes, seed, classes, app_fraction, label_fraction = args
    from galaxy_explorer.train._pixels import resize_uint8
    from galaxy_explorer.train.synth import CLASSES, generate_one

    classes = classes or CLASSES
    imgs = np.empty((n, size, size, 3), np.uint8)
    caps: list[str] = []
    labels: list[str] = []
    for j, i in enumerate(range(start, start + n)):
        # every class is rendered at every size: the size changes once per class cycle
        rs = render_sizes[(i // len(classes)) % len(render_sizes)]
        params, bands, rgb, caption = generate_one(i, seed, rs, classes[i % len(classes)])
        if _uses_app_render(i, app_fraction):
            rgb = app_render(bands)
        if label_fraction > 0 and (i * 0.7548776662466927 + 0.25) % 1.0 < label_fraction:
            # a short class-name caption ("An image of a spiral galaxy") now and then
            from galaxy_explorer.train.captions import label_to_captions

            caption = label_to_captions(params.cls, np.random.default_rng([seed, i, 3]), n=1)[0]
        imgs[j] = rgb if rs == size else resize_uint8(rgb, size).transpose(1, 2, 0)
        caps.append(caption)
        labels.append(params.cls)
    return imgs, caps, labels


def _one_thread() -> None:
    """Worker start-up: one torch thread per rendering process.

    Each worker otherwise starts a thread pool as wide as the machine: 16 workers on a
    16-core node then run 256 spinning threads and rendering slows to a crawl.
    """
    import torch

    torch.set_num_threads(1)


def render(
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
    chunk: int = 200,
) -> tuple[np.ndarray, list[str], list[str]]:
    """``n`` cutouts (classes cycling) → (N, size, size, 3) uint8 RGB, captions, class ids.

    Cutouts are rendered at ``render_sizes`` (cycling; default ``size``) and resized to
    ``size`` the way the app's adapter resizes real cutouts. Deterministic given ``seed``
    whatever ``workers`` is (image i depends on (seed, i) only). A share
    ``app_render_fraction`` of the images is rendered from the bands the way the app renders
    FITS files (:func:`app_render`) instead of the generator's survey-style composite, and a
    share ``label_caption_fraction`` gets a short class-name caption from the label templates.
    """
    cls = tuple(classes) if classes else None
    rs = tuple(int(s) for s in (render_sizes or (size,)))
    jobs = [
        (s, min(chunk, n - s), size, rs, seed, cls, app_render_fraction, label_caption_fraction)
        for s in range(0, n, chunk)
    ]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n, desc=f"rendering (seed {seed})", unit="img", leave=False)
    parts = []
    if workers > 1 and len(jobs) > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers, initializer=_one_thread) as pool:
            for res in pool.imap(_chunk, jobs):
                parts.append(res)
                if bar is not None:
                    bar.update(len(res[1]))
    else:
        for job in jobs:
            res = _chunk(job)
            parts.append(res)
            if bar is not None:
                bar.update(len(res[1]))
    if bar is not None:
        bar.close()
    if not parts:
        return np.zeros((0, size, size, 3), np.uint8), [], []
    imgs = np.concatenate([p[0] for p in parts])
    return imgs, [c for p in parts for c in p[1]], [lab for p in parts for lab in p[2]]
