"""CPU cost per cutout of everything before the model: read, hash, decode, preprocess.

    pytest tests/benchmarks/bench_decode_cost.py -m benchmark -s
    python tests/benchmarks/bench_decode_cost.py

Three kinds of cutout, written here: a 64-px JPEG (Galaxy Zoo thumbnail size), a 256-px
JPEG (Legacy Survey / DECaLS viewer cutouts) and a 256-px 3-band (g, r, z) float32 FITS
cube. For each, the CPU time of one thread (``time.thread_time``, with
``torch.set_num_threads(1)``: other processes on a shared machine do not inflate it), medians
over rounds of:

- ``read``: open + read the whole file (from the page cache: disk or network not included);
- ``sha256``: hashing the bytes, as the scan does for every new file;
- ``baseline decode``: the least any loader must do (Pillow ``convert("RGB")`` to an array;
  astropy ``getdata`` for FITS), the same-run baseline;
- ``load_rgb``: our loader (decode, and for FITS: stretch + Lupton colour);
- ``preprocess``: resize + centre crop + normalise to the model's 224 px input;
- ``total``: read + sha256 + load_rgb + preprocess, i.e. CPU time per image before the model.

Reported as CPU ms per image, images/s per core, and the loader's cost as a ratio to the
baseline decode. These are the numbers behind the README's 100M-cutout estimate.
"""

from __future__ import annotations

import hashlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers import galaxy_array, make_tiny_clip, write_fits, write_jpeg  # noqa: E402

KINDS = ("jpeg64", "jpeg256", "fits256x3")


def _make(folder: Path, kind: str, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    out = []
    for i in range(n):
        size = 64 if kind == "jpeg64" else 256
        g = galaxy_array(size, kind="spiral" if i % 2 else "elliptical", seed=i)
        if kind.startswith("jpeg"):
            u8 = (255 * np.clip(np.arcsinh(g / 50) / np.arcsinh(30), 0, 1)).astype(np.uint8)
            rgb = np.stack([u8, (u8 * 0.9).astype(np.uint8), (u8 * 0.8).astype(np.uint8)], -1)
            out.append(write_jpeg(folder / f"{kind}_{i:04d}.jpg", rgb))
        else:
            cube = np.stack([g * s for s in (0.7, 1.0, 1.3)]) + rng.normal(0, 3, (3, size, size))
            out.append(write_fits(folder / f"{kind}_{i:04d}.fits", cube.astype(np.float32)))
    return out


def _baseline(path: Path) -> np.ndarray:
    if path.suffix == ".fits":
        from astropy.io import fits

        return np.asarray(fits.getdata(path, memmap=False), dtype=np.float32)
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _per_image(fn, paths: list[Path]) -> float:
    """CPU seconds per image of ``fn`` over ``paths`` (this thread only)."""
    t0 = time.thread_time()
    for p in paths:
        fn(p)
    return (time.thread_time() - t0) / len(paths)


def run(n: dict[str, int] | None = None, rounds: int = 5) -> dict[str, float]:
    import torch

    from galaxy_explorer.core.imaging import RenderSettings, load_rgb
    from galaxy_explorer.core.model import ClipAdapter

    torch.set_num_threads(1)
    n = n or {"jpeg64": 200, "jpeg256": 100, "fits256x3": 40}
    tmp = Path(tempfile.mkdtemp(prefix="ge-bench-decode-"))
    # preprocessing depends only on the model's input size: a tiny model with 224-px input
    adapter = ClipAdapter.load(
        str(make_tiny_clip(tmp / "m224", image_size=224)), device="cpu", precision="fp32"
    )
    render = RenderSettings()
    files = {k: _make(tmp / k, k, n[k]) for k in KINDS}
    rgbs = {k: [load_rgb(p, render) for p in files[k]] for k in KINDS}

    def read(p: Path) -> bytes:
        with open(p, "rb") as fh:
            return fh.read()

    stages = {
        "read": read,
        "sha256": None,  # on bytes already read, below
        "baseline decode": _baseline,
        "load_rgb": lambda p: load_rgb(p, render),
        "preprocess": None,  # on decoded arrays, below
    }
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):  # rounds interleave kinds and stages: load changes hit all alike
        for k in KINDS:
            for stage, fn in stages.items():
                if stage == "sha256":
                    blobs = [read(p) for p in files[k]]
                    t0 = time.thread_time()
                    for b in blobs:
                        hashlib.sha256(b).hexdigest()
                    dt = (time.thread_time() - t0) / len(blobs)
                elif stage == "preprocess":
                    t0 = time.thread_time()
                    for r in rgbs[k]:
                        adapter.preprocess_one(r)
                    dt = (time.thread_time() - t0) / len(rgbs[k])
                else:
                    dt = _per_image(fn, files[k])
                times.setdefault((k, stage), []).append(dt)
    res: dict[str, float] = {}
    for k in KINDS:
        med = {s: statistics.median(times[(k, s)]) for s in stages}
        total = med["read"] + med["sha256"] + med["load_rgb"] + med["preprocess"]
        res[f"{k} file KB"] = float(np.mean([p.stat().st_size for p in files[k]])) / 1024
        for s, v in med.items():
            res[f"{k} {s} ms"] = v * 1e3
        res[f"{k} total ms"] = total * 1e3
        res[f"{k} img/s per core"] = 1.0 / total
        res[f"{k} load_rgb / baseline decode"] = med["load_rgb"] / med["baseline decode"]
    return res


def _report(res: dict[str, float]) -> None:
    for k, v in res.items():
        print(f"{k:40s} {v:10.3f}")


@pytest.mark.benchmark
def test_decode_cost():
    res = run()
    _report(res)
    assert all(res[f"{k} total ms"] > 0 for k in KINDS)


if __name__ == "__main__":
    _report(run())
