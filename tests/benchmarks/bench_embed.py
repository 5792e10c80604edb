"""Embedding throughput through the full pipeline (run on demand).

    pytest tests/benchmarks/bench_embed.py -m benchmark -s
    python tests/benchmarks/bench_embed.py [N_IMAGES]

A randomly initialised CLIP with the ViT-B/32 configuration (the cost of the real seed
model) embeds N cutouts (half FITS, half JPEG, 256 px) three ways, in one run:

1. the seed card's usage: ``CLIPProcessor`` + ``CLIPModel``, one image at a time (baseline);
2. the bare batched forward pass on ready tensors (the ceiling);
3. the full pipeline: scan, hash, decode + stretch + preprocess on a thread pool,
   batched forward, cache write (``Session.embed``), fp32, and again with bf16 autocast.

Reported as images/s and as ratios against (1) and (2) from the same run.
On a GPU (``python tests/benchmarks/bench_embed.py N cuda``) the half-precision run is fp16.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers import galaxy_array, write_fits, write_jpeg  # noqa: E402


def _make_data(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        g = galaxy_array(256, kind="spiral" if i % 3 else "elliptical", seed=i)
        if i % 2:
            cube = np.stack([g * s for s in (0.7, 1.0, 1.3)]) + rng.normal(0, 3, (3, 256, 256))
            paths.append(write_fits(folder / f"g{i:04d}.fits", cube.astype(np.float32)))
        else:
            u8 = (255 * np.clip(np.arcsinh(g / 50) / np.arcsinh(30), 0, 1)).astype(np.uint8)
            paths.append(write_jpeg(folder / f"g{i:04d}.jpg", np.stack([u8] * 3, -1)))
    return paths


def _make_vitb32(folder: Path) -> Path:
    import torch
    from helpers import make_tiny_clip
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    make_tiny_clip(folder)  # for its tokenizer files; the model is replaced below
    torch.manual_seed(0)
    cfg = CLIPConfig()  # defaults are ViT-B/32: 224 px, patch 32, 12 layers, width 768, dim 512
    CLIPModel(cfg).save_pretrained(folder)
    tok = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    CLIPProcessor(image_processor=CLIPImageProcessor(), tokenizer=tok).save_pretrained(folder)
    return folder


def run(n: int = 96, rounds: int = 3, device: str = "cpu", workers: int = 2) -> dict[str, float]:
    """Measure each method in alternating rounds and keep the median rate of each.

    Interleaving the methods means a change in machine load hits all of them alike.
    """
    import statistics

    import torch
    from PIL import Image
    from transformers import CLIPModel, CLIPProcessor

    from galaxy_explorer.core.imaging import load_rgb
    from galaxy_explorer.core.jobs import run_to_end
    from galaxy_explorer.core.model import ClipAdapter
    from galaxy_explorer.core.session import Session

    tmp = Path(tempfile.mkdtemp(prefix="ge-bench-"))
    paths = _make_data(tmp / "data", n)
    model_dir = _make_vitb32(tmp / "vitb32")
    model = CLIPModel.from_pretrained(model_dir).eval().to(device)
    proc = CLIPProcessor.from_pretrained(model_dir)
    half = "bf16" if device == "cpu" else "fp16"
    adapters = {
        p: ClipAdapter.load(str(model_dir), device=device, precision=p) for p in ("fp32", half)
    }
    size = adapters["fp32"].image_size
    pixels = torch.randn(n, 3, size, size)
    n_base = max(8, n // 4)  # the baseline is slow: time a quarter of the images

    def baseline() -> float:
        t0 = time.perf_counter()
        with torch.no_grad():
            for p in paths[:n_base]:  # FITS rendered by our loader, as a user would have to
                img = (
                    Image.open(p).convert("RGB")
                    if p.suffix == ".jpg"
                    else Image.fromarray(load_rgb(p))
                )
                out = model.get_image_features(**proc(images=img, return_tensors="pt").to(device))
                out = getattr(out, "pooler_output", out)
                _ = out / out.norm(dim=-1, keepdim=True)
        return n_base / (time.perf_counter() - t0)

    def bare(prec: str) -> float:
        t0 = time.perf_counter()
        for i in range(0, n, 32):
            adapters[prec].embed_pixels(pixels[i : i + 32])
        if device == "cuda":
            torch.cuda.synchronize()
        return n / (time.perf_counter() - t0)

    def pipeline(prec: str, r: int) -> float:
        s = Session(
            tmp / "data",
            model=str(model_dir),
            cache_dir=tmp / f"cache-{prec}-{r}",
            adapter=adapters[prec],
        )
        t0 = time.perf_counter()
        last = run_to_end(s.embed(batch_size=32, workers=workers))
        dt = time.perf_counter() - t0
        assert last.embedded == n
        s.close()
        return n / dt

    rates: dict[str, list[float]] = {}
    for r in range(rounds):
        for name, fn in (
            ("baseline one-at-a-time", baseline),
            ("bare batched forward fp32", lambda: bare("fp32")),
            ("pipeline fp32", lambda r=r: pipeline("fp32", r)),
            (f"bare batched forward {half}", lambda: bare(half)),
            (f"pipeline {half}", lambda r=r: pipeline(half, r)),
        ):
            rates.setdefault(name, []).append(fn())
    res = {f"{k} img/s": statistics.median(v) for k, v in rates.items()}
    base = res["baseline one-at-a-time img/s"]
    for prec in ("fp32", half):
        res[f"pipeline {prec} / baseline"] = res[f"pipeline {prec} img/s"] / base
        res[f"pipeline {prec} / bare forward {prec}"] = (
            res[f"pipeline {prec} img/s"] / res[f"bare batched forward {prec} img/s"]
        )
    res[f"{half} / fp32 bare forward"] = (
        res[f"bare batched forward {half} img/s"] / res["bare batched forward fp32 img/s"]
    )
    return res


def _report(res: dict[str, float]) -> None:
    for k, v in res.items():
        print(f"{k:40s} {v:8.2f}")


@pytest.mark.benchmark
def test_embed_throughput():
    res = run()
    _report(res)
    assert res["pipeline fp32 img/s"] > 0


if __name__ == "__main__":
    dev = sys.argv[2] if len(sys.argv) > 2 else "cpu"
    _report(
        run(
            int(sys.argv[1]) if len(sys.argv) > 1 else 96,
            device=dev,
            workers=2 if dev == "cpu" else 8,
        )
    )
