"""Check that the installed transformers / torch / huggingface_hub really run the app's models.

Run by ``packaging/check_min_versions.sh`` in a virtual environment holding the versions on
trial (with this repository on ``PYTHONPATH``):

1. the bundled model (``resources/model``) loads through
   :class:`galaxy_explorer.core.model.ClipAdapter` and embeds two sample cutouts and two
   texts;
2. a tiny random CLIP saved with ``save_pretrained`` by *this* transformers loads and embeds;
3. a tiny CLIP saved by the reference environment (``--clip``) is found through a
   Hugging Face hub cache (huggingface_hub's ``snapshot_download``, offline) and embeds.

With ``--write-reference FILE`` the embeddings are saved; with ``--reference FILE`` they are
compared with saved ones (cosine >= 0.999), so a version that loads but silently drops
weights (random initialisation of a renamed key) fails too. Exit status 0 when all pass.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_IMAGES = ("synth_4242_000000.fits.gz", "synth_4242_000001.jpg")
TEXTS = ["a barred spiral galaxy", "a smooth elliptical galaxy"]


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {
        d: version(d)
        for d in ("transformers", "torch", "huggingface_hub", "tokenizers", "safetensors")
    }


def _embed(folder_or_id: str) -> dict[str, np.ndarray]:
    from galaxy_explorer.core.imaging import RenderSettings, load_rgb
    from galaxy_explorer.core.model import ClipAdapter

    adapter = ClipAdapter.load(folder_or_id, device="cpu", precision="fp32")
    sample = ROOT / "resources" / "sample" / "images"
    rgbs = [load_rgb(sample / name, RenderSettings()) for name in SAMPLE_IMAGES]
    img = adapter.embed_images(rgbs)
    txt = adapter.embed_texts(TEXTS)
    for name, v in (("image", img), ("text", txt)):
        if not np.all(np.isfinite(v)):
            raise AssertionError(f"{folder_or_id}: {name} embeddings are not finite")
        if not np.allclose(np.linalg.norm(v.astype(np.float32), axis=1), 1.0, atol=1e-3):
            raise AssertionError(f"{folder_or_id}: {name} embeddings are not L2-normalised")
    return {"image": img.astype(np.float32), "text": txt.astype(np.float32)}


def _fake_hub_cache(cache: Path, repo_id: str, folder: Path) -> None:
    """Lay ``folder`` out as huggingface_hub's cache holds a downloaded snapshot."""
    commit = "0" * 40
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(folder, repo / "snapshots" / commit)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clip", type=Path, help="a tiny CLIP saved by the reference environment")
    ap.add_argument("--reference", type=Path, help="compare with embeddings saved here")
    ap.add_argument("--write-reference", type=Path, help="save the embeddings here")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers import make_tiny_clip

    print("versions: " + json.dumps(_versions()), flush=True)
    results: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for key, value in _embed(str(ROOT / "resources" / "model")).items():
            results[f"bundled_{key}"] = value
        print("ok: bundled model loads and embeds", flush=True)
        own = make_tiny_clip(Path(tmp) / "own_clip")
        _embed(str(own))
        print("ok: a tiny CLIP saved by this transformers loads and embeds", flush=True)
        if args.clip is not None:
            cache = Path(tmp) / "hub"
            _fake_hub_cache(cache, "trial/tiny-clip", args.clip)
            os.environ["HF_HUB_CACHE"] = str(cache)
            os.environ["HF_HUB_OFFLINE"] = "1"
            for key, value in _embed("trial/tiny-clip").items():
                results[f"clip_{key}"] = value
            print("ok: the reference tiny CLIP loads from a hub cache and embeds", flush=True)
    if args.write_reference is not None:
        np.savez(args.write_reference, **results)
    if args.reference is not None:
        ref = np.load(args.reference)
        for key in ref.files:
            cos = float(np.min(np.sum(ref[key] * results[key], axis=1)))
            if cos < 0.999:
                print(f"FAIL: {key} embeddings differ from the reference (min cosine {cos:.4f})")
                return 1
        print("ok: embeddings match the reference (cosine >= 0.999)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
