"""Test helpers: tiny CLIP models saved with ``save_pretrained`` and tiny image fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

_CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789-,.'")


def make_tiny_clip(folder: Path, *, seed: int = 0, image_size: int = 32, projection_dim: int = 16) -> Path:
    """Save a tiny randomly initialised CLIP (model + tokenizer + image processor) to ``folder``.

    The folder loads with ``CLIPModel.from_pretrained`` / ``AutoProcessor.from_pretrained``
    exactly like a hub model, so the real loading path runs in tests.
    """
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab: dict[str, int] = {}
    for c in _CHARS:
        vocab[c] = len(vocab)
    for c in _CHARS:
        vocab[c + "</w>"] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tok = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    cfg = CLIPConfig(
        text_config=dict(
            vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=2, max_position_embeddings=77,
            bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"],
            pad_token_id=vocab["<|endoftext|>"],
        ),
        vision_config=dict(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
            image_size=image_size, patch_size=8,
        ),
        projection_dim=projection_dim,
    )
    torch.manual_seed(seed)
    model = CLIPModel(cfg)
    ip = CLIPImageProcessor(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    )
    CLIPProcessor(image_processor=ip, tokenizer=tok).save_pretrained(folder)
    model.save_pretrained(folder)
    return folder


def galaxy_array(size: int = 48, *, kind: str = "elliptical", seed: int = 0) -> np.ndarray:
    """A 2-D float32 image of a simple model galaxy plus noise (not realistic; just structured)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    r = np.hypot(x, y * (1.6 if kind == "elliptical" else 1.0))
    img = np.exp(-r / (size / 10))
    if kind == "spiral":
        theta = np.arctan2(y, x)
        img *= 1 + 0.8 * np.cos(2 * theta - 0.5 * np.log1p(r))
    return (img * 1000 + rng.normal(0, 5, img.shape)).astype(np.float32)


def write_fits(path: Path, data: np.ndarray, header: dict | None = None) -> Path:
    from astropy.io import fits

    hdu = fits.PrimaryHDU(data)
    for k, v in (header or {}).items():
        hdu.header[k] = v
    hdu.writeto(path, overwrite=True)
    return Path(path)


def write_jpeg(path: Path, data: np.ndarray | None = None, *, seed: int = 0) -> Path:
    from PIL import Image

    if data is None:
        g = galaxy_array(48, seed=seed)
        g = (255 * (g - g.min()) / (np.ptp(g) + 1e-9)).astype(np.uint8)
        data = np.stack([g, g, g], axis=-1)
    Image.fromarray(data).save(path)
    return Path(path)


def make_cutout_folder(folder: Path, n_fits: int = 4, n_jpeg: int = 4) -> Path:
    """A folder with a few FITS and JPEG cutouts, distinct content each."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_fits):
        kind = "spiral" if i % 2 else "elliptical"
        write_fits(folder / f"gal_{i:03d}.fits", galaxy_array(48, kind=kind, seed=i),
                   {"RA": 150.0 + i * 0.01, "DEC": 2.0 + i * 0.01})
    for i in range(n_jpeg):
        write_jpeg(folder / f"img_{i:03d}.jpg", seed=100 + i)
    return folder
