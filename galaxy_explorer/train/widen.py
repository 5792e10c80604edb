"""A wider synthetic domain: survey cutouts and photographs of galaxies as people have them.

:mod:`galaxy_explorer.train.synth` draws idealised, centred galaxies at survey depth. Real
cutouts and colour photographs of nearby galaxies also have bright foreground stars with
halos and diffraction spikes, neighbours, sky gradients and colour noise, galaxies that
fill the frame (or sit small in it), strongly inclined spirals whose arms still show,
blue star-forming knots on blue arms around a red bulge, saturated white cores, JPEG
artefacts and every kind of stretch. This module widens the generator in two places:

* :func:`widen_params` - the scene: inclined spirals up to an axis ratio of about 0.3
  (still *spiral*: only the generator's edge-on class, axis ratio ≲ 0.2, is called
  edge-on), resolved nearby galaxies (a larger zoom: sharper PSF relative to the galaxy),
  small and frame-filling galaxies, red bulges with blue knotty arms, more field stars;
* :func:`photo_effects` - the picture: re-stretching (gamma, contrast, black point,
  colour saturation), photographic over-exposure with white cores, bright stars with halos
  and spikes, sky gradients, colour noise, blur, grey-scale and JPEG compression.

Everything is deterministic given ``(seed, index)`` (:func:`generate_widened`). Captions
come from the (widened) parameters through :func:`galaxy_explorer.train.captions.caption_for`,
so an inclined spiral is still captioned as a spiral.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

# the generator's classes whose appearance depends on a disk's inclination
_SPIRALS = ("spiral", "barred_spiral")


def widen_params(p: Any, rng: np.random.Generator) -> Any:
    """Widen one scene drawn by :func:`galaxy_explorer.train.synth.sample_params` (in place).

    Returns ``p``.
    """
    from galaxy_explorer.train import synth

    if p.cls in _SPIRALS and rng.random() < 0.35:
        # strongly inclined spirals whose arms still show (axis ratio ~0.3-0.55)
        p.inclination_deg = float(rng.uniform(55, 74))
        p.axis_ratio = synth._disk_axis_ratio(p.inclination_deg, 0.15)
    if p.cls in _SPIRALS + ("irregular",) and rng.random() < 0.5:
        # red bulge, blue arms with many star-forming knots
        p.g_r = float(rng.normal(0.9, 0.06))
        p.g_r_young = float(rng.normal(-0.05, 0.08))
        p.n_knots = int(p.n_knots + rng.integers(10, 40))
    if p.cls not in ("compact", "artifact"):
        if rng.random() < 0.45:  # a nearby, well-resolved galaxy
            synth._apply_zoom(p, float(rng.uniform(1.3, 2.4)))
            p.psf_fwhm_arcsec = float(p.psf_fwhm_arcsec * rng.uniform(0.6, 1.0))
        if rng.random() < 0.25:  # a small galaxy in a wide field
            p.fov_arcsec = float(p.fov_arcsec * rng.uniform(1.2, 1.8))
    p.n_stars = int(p.n_stars + rng.poisson(1.0))
    p.n_neighbours = int(p.n_neighbours + rng.poisson(0.7))
    return p


def _star(
    h: int,
    w: int,
    x: float,
    y: float,
    amp: float,
    core: float,
    halo: float,
    spikes: bool,
    angle: float,
    spike_len: float,
) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dx, dy = xx - x, yy - y
    r2 = dx * dx + dy * dy
    img = np.exp(-r2 / (2 * core * core)) + 0.08 * (1 + r2 / (halo * halo)) ** -1.5
    if spikes:
        c, s = math.cos(angle), math.sin(angle)
        u, v = dx * c + dy * s, -dx * s + dy * c
        width = 0.6 + 0.3 * core
        for a, b in ((u, v), (v, u)):
            img += 0.5 * np.exp(-(b * b) / (2 * width * width)) * np.exp(-np.abs(a) / spike_len)
    return (amp * img).astype(np.float32)


def photo_effects(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Re-render an (H, W, 3) uint8 cutout the way photographs and other surveys look.

    Returns a new (H', W', 3) uint8 array (H' ≤ H when the frame is cropped so the galaxy
    fills it).
    """
    x = rgb.astype(np.float32) / 255.0
    h, w = x.shape[:2]
    if rng.random() < 0.35:  # the galaxy fills the frame
        f = rng.uniform(0.55, 0.9)
        ch, cw = max(16, int(h * f)), max(16, int(w * f))
        oy = int(np.clip((h - ch) // 2 + rng.normal(0, 0.04 * h), 0, h - ch))
        ox = int(np.clip((w - cw) // 2 + rng.normal(0, 0.04 * w), 0, w - cw))
        x = x[oy : oy + ch, ox : ox + cw]
        h, w = x.shape[:2]
    style = rng.random()
    if style < 0.4:  # photograph: black sky, bright saturated colours, burnt-out core
        sky = np.percentile(x.reshape(-1, 3), rng.uniform(30, 60), axis=0)
        x = np.clip(x - sky, 0, None)
        x = x * rng.uniform(1.3, 3.5)
        grey = x.mean(axis=2, keepdims=True)
        x = grey + (x - grey) * rng.uniform(1.2, 2.2)
        x = np.clip(x, 0, None) ** rng.uniform(0.6, 1.0)
    elif style < 0.75:  # another stretch of the same data
        gamma = rng.uniform(0.5, 1.6)
        x = np.clip(x, 0, 1) ** gamma
        x = (x - rng.uniform(0, 0.12)) * rng.uniform(0.8, 1.8)
        grey = x.mean(axis=2, keepdims=True)
        x = grey + (x - grey) * rng.uniform(0.4, 1.6)
    # bright foreground stars (halos, and diffraction spikes in photographs)
    for _ in range(int(rng.poisson(1.2))):
        r = rng.uniform(0.18, 0.7) * min(h, w) / 2
        a = rng.uniform(0, 2 * math.pi)
        sx, sy = w / 2 + r * math.cos(a), h / 2 + r * math.sin(a)
        col = np.array([1.0, rng.uniform(0.85, 1.0), rng.uniform(0.7, 1.1)], np.float32)
        star = _star(
            h,
            w,
            sx,
            sy,
            rng.uniform(0.4, 3.0),
            rng.uniform(0.6, 1.8),
            rng.uniform(2.0, 6.0),
            rng.random() < 0.5,
            rng.uniform(0, math.pi / 2),
            rng.uniform(0.04, 0.15) * min(h, w),
        )
        x = x + star[..., None] * col
    if rng.random() < 0.3:  # sky gradient
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        ang = rng.uniform(0, 2 * math.pi)
        ramp = (math.cos(ang) * (xx / w - 0.5) + math.sin(ang) * (yy / h - 0.5))[..., None]
        x = x + ramp * rng.uniform(0.03, 0.15) * rng.uniform(0.5, 1.0, 3).astype(np.float32)
    if rng.random() < 0.4:  # colour noise
        x = x + rng.normal(0, rng.uniform(0.005, 0.04), x.shape).astype(np.float32)
    if rng.random() < 0.06:  # grey-scale
        x = np.repeat(x.mean(axis=2, keepdims=True), 3, axis=2)
    out = (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)
    if rng.random() < 0.5:  # JPEG artefacts
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(out).save(buf, format="JPEG", quality=int(rng.integers(25, 96)))
        buf.seek(0)
        out = np.asarray(Image.open(buf).convert("RGB"))
    return np.ascontiguousarray(out)


def generate_widened(
    index: int,
    seed: int,
    size: int,
    cls: str | None = None,
    *,
    widen: bool = True,
    app_render: bool = False,
) -> tuple[Any, np.ndarray, str]:
    """Image ``index`` of the widened stream ``seed``: ``(params, rgb uint8, caption)``.

    With ``widen`` false this is the plain generator's survey-style cutout
    (:func:`galaxy_explorer.train.synth.generate_one`, other random streams). With
    ``app_render`` the picture is the galaxy's g, r, z bands rendered exactly as the app
    renders a 3-band FITS file (:func:`galaxy_explorer.train._synth_bridge.app_render`,
    default settings), without the photographic effects (a FITS file has none); the scene
    is still widened when ``widen`` is true.
    """
    from galaxy_explorer.train import synth
    from galaxy_explorer.train.captions import caption_for

    params = synth.sample_params(np.random.default_rng([seed, index, 10]), cls)
    rng = np.random.default_rng([seed, index, 11])
    if widen:
        widen_params(params, rng)
    bands = synth.render_bands(params, size, np.random.default_rng([seed, index, 12]))
    if app_render:
        from galaxy_explorer.train._synth_bridge import app_render as render_like_app

        rgb = render_like_app(bands)
    else:
        rgb = synth.to_rgb(bands)
        if widen:
            rgb = photo_effects(rgb, rng)
    caption = caption_for(params, np.random.default_rng([seed, index, 13]))
    return params, rgb, caption


def uses_app_render(i: int, fraction: float) -> bool:
    """Whether image ``i`` of a widened stream is rendered the way the app renders FITS.

    A low-discrepancy sequence of its own (independent of the widened and label-caption
    shares), so a share ``fraction`` of any run of consecutive indices is app-rendered.
    """
    return fraction > 0 and (i * 0.5698402909980532 + 0.125) % 1.0 < fraction


def _chunk(
    args: tuple[int, int, int, tuple[int, ...], Sequence[str], float, float, float],
) -> Any:
    start, n, seed, render_sizes, classes, widen_fraction, label_fraction, app_fraction = args
    from galaxy_explorer.train.captions import label_to_captions

    out = []
    for i in range(start, start + n):
        rs = render_sizes[(i // len(classes)) % len(render_sizes)]
        widen = (i * 0.6180339887498949 + 0.5) % 1.0 < widen_fraction
        params, rgb, cap = generate_widened(
            i,
            seed,
            rs,
            classes[i % len(classes)],
            widen=widen,
            app_render=uses_app_render(i, app_fraction),
        )
        if label_fraction > 0 and (i * 0.7548776662466927 + 0.25) % 1.0 < label_fraction:
            cap = label_to_captions(params.cls, np.random.default_rng([seed, i, 14]), n=1)[0]
        out.append((rgb, cap, params.cls))
    return out


def iter_widened(
    n: int,
    *,
    seed: int,
    render_sizes: Sequence[int] = (96, 128, 160),
    classes: Sequence[str] | None = None,
    widen_fraction: float = 0.7,
    label_caption_fraction: float = 0.3,
    app_render_fraction: float = 0.0,
    workers: int = 1,
    chunk: int = 100,
) -> Iterator[tuple[list[np.ndarray], list[str], list[str]]]:
    """``n`` cutouts (classes cycling), one chunk at a time, in order: ``(rgbs, captions,
    class ids)`` of RGB arrays (various sizes), captions and class ids.

    A share ``widen_fraction`` goes through :func:`widen_params` and :func:`photo_effects`;
    the rest are the plain generator's survey-style cutouts. A share
    ``label_caption_fraction`` gets a short class-name caption, and a share
    ``app_render_fraction`` is rendered from its bands the way the app renders FITS files
    (:func:`uses_app_render`; without it FITS cutouts in the app look unlike anything the
    model was trained on). Deterministic given ``seed`` whatever ``workers`` is. The caller
    can work on one chunk (e.g. run it through a network) while the worker processes render
    the next ones; :func:`render_widened` collects them all.
    """
    from galaxy_explorer.train.synth import CLASSES

    cls = tuple(classes) if classes else tuple(CLASSES)
    jobs = [
        (
            s,
            min(chunk, n - s),
            seed,
            tuple(render_sizes),
            cls,
            widen_fraction,
            label_caption_fraction,
            app_render_fraction,
        )
        for s in range(0, n, chunk)
    ]

    def unzip(rows: list[Any]) -> tuple[list[np.ndarray], list[str], list[str]]:
        return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]

    if workers > 1 and len(jobs) > 1:
        import multiprocessing as mp

        from galaxy_explorer.train._synth_bridge import _one_thread

        with mp.get_context("spawn").Pool(workers, initializer=_one_thread) as pool:
            for part in pool.imap(_chunk, jobs):
                yield unzip(part)
    else:
        for j in jobs:
            yield unzip(_chunk(j))


def render_widened(n: int, **kwargs: Any) -> tuple[list[np.ndarray], list[str], list[str]]:
    """:func:`iter_widened` collected: ``n`` cutouts → RGB arrays, captions, class ids.

    Takes :func:`iter_widened`'s keyword arguments (``seed`` is required).
    """
    rgbs: list[np.ndarray] = []
    caps: list[str] = []
    labels: list[str] = []
    for r, c, lab in iter_widened(n, **kwargs):
        rgbs += r
        caps += c
        labels += lab
    return rgbs, caps, labels
