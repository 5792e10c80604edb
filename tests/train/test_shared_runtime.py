"""Training reads the device, bf16 support and the preprocessing config as inference does."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from helpers import galaxy_array


def _pairs(folder: Path, n: int = 8) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "pairs.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "caption"])
        for i in range(n):
            g = galaxy_array(40, seed=i)
            g = (255 * (g - g.min()) / (np.ptp(g) + 1e-9)).astype(np.uint8)
            Image.fromarray(np.stack([g, g, g // 2], axis=-1)).save(folder / f"g{i}.png")
            w.writerow([f"g{i}.png", f"a galaxy number {i}"])
    return folder / "pairs.csv"


def test_training_size_is_the_size_the_app_feeds_the_saved_model(tmp_path):
    """A processor that resizes but does not crop: the app feeds the model the resize, so
    training must too (it used to read the unused crop size instead)."""
    from transformers import CLIPImageProcessor

    from galaxy_explorer.core.preprocess import read_image_config
    from galaxy_explorer.train.data import ImageConfig

    ip = CLIPImageProcessor(
        size={"shortest_edge": 48},
        crop_size={"height": 40, "width": 40},
        do_center_crop=False,
        image_mean=[0.1, 0.2, 0.3],
        image_std=[0.4, 0.5, 0.6],
    )
    ip.save_pretrained(tmp_path)
    app = read_image_config(tmp_path)
    cfg = ImageConfig.from_processor(ip)
    assert cfg.size == app["crop"] == 48
    assert list(cfg.mean) == pytest.approx(app["mean"]) and list(cfg.std) == pytest.approx(
        app["std"]
    )
    cropping = CLIPImageProcessor(size={"shortest_edge": 48}, crop_size={"height": 40, "width": 40})
    assert ImageConfig.from_processor(cropping).size == 40


def test_training_refuses_a_missing_device_with_the_apps_message(tmp_path, monkeypatch):
    import torch

    from galaxy_explorer.train.data import load_folder_pairs
    from galaxy_explorer.train.train import (
        TINY_CLIP_CONFIG,
        TrainConfig,
        build_clip_from_config,
        train,
    )

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    model, proc = build_clip_from_config(TINY_CLIP_CONFIG)
    pairs = load_folder_pairs(_pairs(tmp_path / "d"), 32)
    cfg = TrainConfig(out=tmp_path / "m", epochs=1, batch_size=4, progress=False, device="cuda")
    with pytest.raises(ValueError, match="no CUDA GPU is available"):
        train(model, proc, pairs, cfg)
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        train(model, proc, pairs, TrainConfig(out=tmp_path / "m", device="gpu", progress=False))


def test_training_asks_core_whether_bf16_is_fast(tmp_path, monkeypatch):
    from galaxy_explorer.core import device as device_mod
    from galaxy_explorer.train import train as train_mod
    from galaxy_explorer.train.data import load_folder_pairs

    seen: list[bool] = []

    class Spy(train_mod.TextFeatures):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            seen.append(self.bf16)

    monkeypatch.setattr(train_mod, "TextFeatures", Spy)
    pairs = load_folder_pairs(_pairs(tmp_path / "d"), 32)
    for i, fast in enumerate((True, False)):
        monkeypatch.setattr(device_mod, "cpu_has_fast_bf16", lambda fast=fast: fast)
        model, proc = train_mod.build_clip_from_config(train_mod.TINY_CLIP_CONFIG)
        cfg = train_mod.TrainConfig(
            out=tmp_path / f"m{i}", epochs=1, batch_size=4, progress=False, device="cpu"
        )
        train_mod.train(model, proc, pairs, cfg)
    assert seen == [True, False]
