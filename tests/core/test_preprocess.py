"""Preprocessing settings: a processor in memory and its saved folder read the same way."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from galaxy_explorer.core.preprocess import (
    CLIP_MEAN,
    image_config_from_dict,
    image_config_from_processor,
    read_image_config,
)


def _processor(**kw):
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor(**kw)


@pytest.mark.parametrize(
    "kw",
    [
        {},  # CLIP defaults: 224 / 224
        {"size": {"shortest_edge": 112}, "crop_size": {"height": 112, "width": 112}},
        {"size": {"shortest_edge": 160}, "crop_size": {"height": 128, "width": 128}},
        {
            "size": {"shortest_edge": 128},
            "crop_size": {"height": 96, "width": 96},
            "do_center_crop": False,
            "image_mean": [0.5, 0.4, 0.3],
            "image_std": [0.2, 0.25, 0.3],
        },
    ],
)
def test_processor_and_its_saved_folder_agree(tmp_path, kw):
    proc = _processor(**kw)
    proc.save_pretrained(tmp_path)
    model_cfg = SimpleNamespace(vision_config=SimpleNamespace(image_size=77))
    from_folder = read_image_config(tmp_path, model_cfg)
    assert image_config_from_processor(proc, model_cfg) == from_folder
    # a combined processor (image processor + tokenizer) reads through its image processor
    assert image_config_from_processor(SimpleNamespace(image_processor=proc)) == read_image_config(
        tmp_path
    )
    crop = kw.get("crop_size", {}).get("height", 224)
    resize = kw.get("size", {}).get("shortest_edge", 224)
    expected_crop = crop if kw.get("do_center_crop", True) else resize
    assert (from_folder["resize"], from_folder["crop"]) == (resize, expected_crop)
    assert from_folder["mean"] == pytest.approx(kw.get("image_mean", CLIP_MEAN))


def test_folder_files_precedence_and_model_size_fallback(tmp_path):
    (tmp_path / "processor_config.json").write_text(
        json.dumps({"image_processor": {"crop_size": {"height": 64}, "image_mean": [0, 0, 0]}})
    )
    cfg = read_image_config(tmp_path)
    assert cfg["crop"] == 64 and cfg["mean"] == [0.0, 0.0, 0.0]
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"crop_size": 48}))
    cfg = read_image_config(tmp_path)
    assert cfg["crop"] == 48 and cfg["mean"] == [0.0, 0.0, 0.0]  # the rest still merged
    bare = tmp_path / "bare"
    bare.mkdir()
    vision = SimpleNamespace(vision_config=SimpleNamespace(image_size=96))
    assert read_image_config(bare, vision)["crop"] == 96
    assert read_image_config(bare)["crop"] == 224
    assert image_config_from_dict({}, SimpleNamespace(image_size=40))["resize"] == 40


def test_image_config_dict_is_stable_for_the_model_key(tmp_path):
    """The dict is part of the model key: the bundled model's must not change."""
    from galaxy_explorer.core.model import bundled_model_path

    cfg = read_image_config(bundled_model_path(), SimpleNamespace(image_size=112))
    assert cfg == {
        "resize": 112,
        "crop": 112,
        "center_crop": True,
        "mean": [0.498, 0.498, 0.498],
        "std": [0.502, 0.502, 0.502],
        "rescale": 0.00392156862745098,
        "model_size": 112,
    }
