from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import make_tiny_clip, tiny_bert_text

from galaxy_explorer.core import model as model_mod
from galaxy_explorer.core import model_source
from galaxy_explorer.core.model import ClipAdapter, ModelLoadError, pick_device, resolve_model_spec


@pytest.fixture(scope="module")
def adapter(tiny_model):
    return ClipAdapter.load(str(tiny_model), device="cpu", precision="fp32")


def _rgb(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_loads_folder_and_reads_sizes_from_config(adapter):
    assert adapter.dim == 16
    assert adapter.image_size == 32
    assert adapter.device == "cpu"
    assert 1.0 < adapter.logit_scale <= 100.0


def test_image_and_text_vectors_are_unit_length(adapter):
    v = adapter.embed_images([_rgb(40, 60), _rgb(32, 32, 1), _rgb(100, 50, 2)])
    assert v.shape == (3, 16) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    t = adapter.embed_texts(["spiral galaxy", "elliptical galaxy", "x" * 500])
    assert t.shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1, atol=1e-5)
    assert not np.allclose(t[0], t[1])


def test_preprocessing_matches_reference_clip_processor(adapter, tiny_model):
    """Our tensor preprocessing must give the same vectors as the seed card's CLIPProcessor path."""
    import torch
    from PIL import Image
    from transformers import CLIPModel, CLIPProcessor

    ref_model = CLIPModel.from_pretrained(tiny_model)
    proc = CLIPProcessor.from_pretrained(tiny_model)
    y, x = np.mgrid[:75, :120]
    smooth = np.stack([(x * 2) % 256, (y * 3) % 256, (x + y) % 256], -1).astype(np.uint8)
    with torch.no_grad():
        px = proc(images=[Image.fromarray(smooth)], return_tensors="pt")["pixel_values"]
        out = ref_model.get_image_features(pixel_values=px)
    ref = getattr(out, "pooler_output", out)
    ref = (ref / ref.norm(dim=-1, keepdim=True)).numpy()[0]
    ours = adapter.embed_images([smooth])[0]
    assert float(ours @ ref) >= 0.99


def test_embed_labels_averages_templates(adapter):
    labels = ["spiral galaxy", "elliptical galaxy"]
    plain = adapter.embed_labels(labels)
    np.testing.assert_allclose(plain, adapter.embed_texts(labels), atol=1e-6)
    templ = adapter.embed_labels(labels, ["a {}", "an image of a {}"])
    manual = adapter.embed_texts(["a spiral galaxy", "an image of a spiral galaxy"]).mean(0)
    manual /= np.linalg.norm(manual)
    np.testing.assert_allclose(templ[0], manual, atol=1e-5)
    with pytest.raises(ValueError, match="placeholder"):
        adapter.embed_labels(labels, ["no placeholder"])


def test_model_key_follows_weights_not_location(tiny_model, tmp_path, adapter):
    copy = shutil.copytree(tiny_model, tmp_path / "copy")
    other = make_tiny_clip(tmp_path / "other", seed=1)
    a2 = ClipAdapter.load(str(copy), device="cpu")
    a3 = ClipAdapter.load(str(other), device="cpu")
    assert a2.model_key.split("@")[1] == adapter.model_key.split("@")[1]
    assert a3.model_key.split("@")[1] != adapter.model_key.split("@")[1]


def test_bf16_autocast_agrees_with_fp32(tiny_model, adapter):
    bf = ClipAdapter.load(str(tiny_model), device="cpu", precision="bf16")
    imgs = [_rgb(48, 48, i) for i in range(4)]
    a, b = adapter.embed_images(imgs), bf.embed_images(imgs)
    assert np.min(np.sum(a * b, axis=1)) >= 0.99
    assert bf.model_key == adapter.model_key  # precision never splits the cache


def test_auto_precision_uses_bf16_only_where_the_cpu_has_it(tiny_model, monkeypatch):
    monkeypatch.setattr(model_mod, "cpu_has_fast_bf16", lambda: True)
    assert ClipAdapter.load(str(tiny_model), device="cpu").precision == "bf16"
    monkeypatch.setattr(model_mod, "cpu_has_fast_bf16", lambda: False)
    assert ClipAdapter.load(str(tiny_model), device="cpu").precision == "fp32"


def test_bad_device_and_precision():
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        pick_device("gpu")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            pick_device("cuda")
    assert pick_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="unknown precision"):
        ClipAdapter.load("whatever", precision="fp8")


def test_bad_model_specs(tmp_path):
    with pytest.raises(ModelLoadError, match="no such model folder"):
        ClipAdapter.load(str(tmp_path / "nope" / "x"), device="cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="no config.json"):
        ClipAdapter.load(str(tmp_path / "empty"), device="cpu")
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text(json.dumps({"model_type": "clip"}))
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x04not really")
    with pytest.raises(ModelLoadError, match="no safetensors"):
        ClipAdapter.load(str(pickled), device="cpu")
    with pytest.raises(ModelLoadError, match="downloads are disabled"):
        ClipAdapter.load("someone/not-a-cached-model", device="cpu")


def _fake_hub_cache(hub: Path, repo: str, src: Path) -> None:
    base = hub / ("models--" + repo.replace("/", "--"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    snap = base / "snapshots" / commit
    shutil.copytree(src, snap)
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(commit)


def test_auto_prefers_cached_seed_model_then_bundled(tmp_path, tiny_model, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(model_source, "bundled_model_path", lambda: tmp_path / "bundled")
    (tmp_path / "hub").mkdir()
    with pytest.raises(ModelLoadError, match="no model available"):
        resolve_model_spec("auto")
    shutil.copytree(tiny_model, tmp_path / "bundled")
    assert resolve_model_spec("auto") == str(tmp_path / "bundled")
    _fake_hub_cache(tmp_path / "hub", model_mod.DEFAULT_HUB_MODEL, tiny_model)
    assert resolve_model_spec("auto") == model_mod.DEFAULT_HUB_MODEL
    a = ClipAdapter.load("auto", device="cpu")
    assert a.spec == model_mod.DEFAULT_HUB_MODEL
    assert a.model_key.startswith(model_mod.DEFAULT_HUB_MODEL + "@0123456789abcdef")


def _tiny_dual_encoder(folder: Path) -> Path:
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        VisionTextDualEncoderConfig,
        VisionTextDualEncoderModel,
        VisionTextDualEncoderProcessor,
    )

    tok, text = tiny_bert_text(folder)
    cfg = VisionTextDualEncoderConfig.from_vision_text_configs(
        CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=24,
            patch_size=8,
        ),
        text,
        projection_dim=8,
    )
    torch.manual_seed(0)
    VisionTextDualEncoderModel(cfg).save_pretrained(folder)
    ip = CLIPImageProcessor(size={"shortest_edge": 24}, crop_size={"height": 24, "width": 24})
    VisionTextDualEncoderProcessor(image_processor=ip, tokenizer=tok).save_pretrained(folder)
    return folder


def test_dual_encoder_models_load_the_same_way(tmp_path):
    a = ClipAdapter.load(str(_tiny_dual_encoder(tmp_path / "dual")), device="cpu")
    assert a.dim == 8 and a.image_size == 24
    assert a.embed_images([_rgb(30, 30)]).shape == (1, 8)
    assert a.embed_texts(["a spiral galaxy"]).shape == (1, 8)
