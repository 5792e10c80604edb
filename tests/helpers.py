"""Test helpers: tiny CLIP models saved with ``save_pretrained`` and tiny image fixtures."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

_CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789-,.'")


def make_tiny_clip(
    folder: Path, *, seed: int = 0, image_size: int = 32, projection_dim: int = 16
) -> Path:
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
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=77,
            bos_token_id=vocab["<|startoftext|>"],
            eos_token_id=vocab["<|endoftext|>"],
            pad_token_id=vocab["<|endoftext|>"],
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=image_size,
            patch_size=8,
        ),
        projection_dim=projection_dim,
    )
    torch.manual_seed(seed)
    model = CLIPModel(cfg)
    # A freshly initialised tiny ViT maps every image to nearly the same vector (mean cosine
    # 0.98), which makes rankings in tests hinge on float rounding. Larger weights give
    # distinct embeddings (mean cosine ~0.4), like a trained model.
    with torch.no_grad():
        for tower, factor in ((model.vision_model, 10.0), (model.text_model, 3.0)):
            for p in tower.parameters():
                if p.dim() >= 2:
                    p.mul_(factor)
        model.visual_projection.weight.mul_(10.0)
        model.text_projection.weight.mul_(3.0)
    ip = CLIPImageProcessor(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    )
    CLIPProcessor(image_processor=ip, tokenizer=tok).save_pretrained(folder)
    model.save_pretrained(folder)
    return folder


def tiny_bert_text(folder: Path) -> tuple[object, object]:
    """A 9-word BERT tokenizer (its ``vocab.txt`` written to ``folder``) and a 1-layer
    ``BertConfig`` to match: the text tower of the tiny dual-encoder test models."""
    from transformers import BertConfig, BertTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "spiral", "galaxy", "elliptical", "a"]
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    tok = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"))
    cfg = BertConfig(
        vocab_size=len(words),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
    )
    return tok, cfg


def galaxy_array(size: int = 48, *, kind: str = "elliptical", seed: int = 0) -> np.ndarray:
    """A 2-D float32 image of a simple model galaxy plus noise (not realistic; just structured).

    The seed moves the centre and changes size, axis ratio, orientation and brightness, so
    images with different seeds differ in structure, not only in noise.
    """
    rng = np.random.default_rng(seed)
    cx, cy = rng.uniform(-size / 6, size / 6, 2)
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    x, y = x - cx, y - cy
    pa = rng.uniform(0, np.pi)
    xr, yr = x * np.cos(pa) + y * np.sin(pa), -x * np.sin(pa) + y * np.cos(pa)
    q = rng.uniform(0.3, 1.0) if kind == "elliptical" else 1.0
    r = np.hypot(xr, yr / q)
    img = np.exp(-r / (size * rng.uniform(0.04, 0.2)))
    if kind == "spiral":
        theta = np.arctan2(yr, xr)
        arms = int(rng.integers(2, 5))
        img *= 1 + 0.8 * np.cos(arms * theta - rng.uniform(0.3, 1.5) * np.log1p(r))
    img *= rng.uniform(300, 3000)
    return (img + rng.normal(0, 5, img.shape)).astype(np.float32)


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
        write_fits(
            folder / f"gal_{i:03d}.fits",
            galaxy_array(48, kind=kind, seed=i),
            {"RA": 150.0 + i * 0.01, "DEC": 2.0 + i * 0.01},
        )
    for i in range(n_jpeg):
        write_jpeg(folder / f"img_{i:03d}.jpg", seed=100 + i)
    return folder


class LineCounter:
    """Counts the Python lines run inside ``with LineCounter() as calls:`` (``calls.n``).

    A loop over a catalogue's rows runs at least one line per row, so a bound on ``n`` far
    below the row count proves that code did no Python work per row.
    """

    def __init__(self) -> None:
        self.n = 0

    def __enter__(self) -> LineCounter:
        sys.settrace(self._trace)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.settrace(None)

    def _trace(self, frame: object, event: str, arg: object) -> object:
        self.n += 1
        return self._trace
