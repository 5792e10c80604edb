"""A saved model carries no path of the machine it was trained on (``_name_or_path``)."""

from __future__ import annotations

import json

import pytest
from helpers import make_tiny_clip


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_save_model_drops_source_paths(tmp_path, dtype):
    from transformers import CLIPModel, CLIPProcessor

    from galaxy_explorer.train.train import save_model

    src = make_tiny_clip(tmp_path / "towers")
    model = CLIPModel.from_pretrained(src)
    processor = CLIPProcessor.from_pretrained(src)
    # as when a tower was loaded from a local folder (the bundled model's text tower was)
    model.config.text_config._name_or_path = str(src / "text")
    model.config.vision_config._name_or_path = str(src / "vision")
    out = tmp_path / "saved"
    save_model(model, processor, out, dtype)
    text = (out / "config.json").read_text()
    assert str(tmp_path) not in text
    cfg = json.loads(text)
    assert "_name_or_path" not in cfg.get("text_config", {})
    assert "_name_or_path" not in cfg.get("vision_config", {})
    reloaded = CLIPModel.from_pretrained(out)  # still a loadable model, fp32 as before
    assert next(reloaded.parameters()).dtype.is_floating_point
    assert reloaded.config.text_config.hidden_size == model.config.text_config.hidden_size
