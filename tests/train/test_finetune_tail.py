"""Fine-tuning the backbone's last blocks (issue 9, ``recipe_lite`` stage 2): the split
forward the recipe trains on equals the model's own forward, only the blocks from the
chosen one learn, and the weight-space interpolation lands where it says."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from test_efficientnet_lite_taps import _calibrated  # noqa: E402


def _cfg(**kw):
    from galaxy_explorer.models.efficientnet_lite import EfficientNetLiteConfig

    return EfficientNetLiteConfig(image_size=64, head_hidden=16, hidden_size=8, **kw)


@pytest.mark.parametrize("taps", [[], [10, 14, 15], [4, 7, 10, 14, 15]])
@pytest.mark.parametrize("start", [0, 11, 14, 16])
def test_split_forward_equals_the_models_features(taps, start):
    """split_features + features_from = pooled_features, for taps before, at and after the
    split block (the recipe caches the first half once and trains on the second)."""
    m = _calibrated(_cfg(feature_taps=taps))
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        want = m.pooled_features(x)
        h, pre = m.split_features(x, start)
        got = m.features_from(h, start, pre)
    from galaxy_explorer.train.recipe_lite import pre_tap_width

    assert pre.shape == (3, pre_tap_width(m.config, start))
    torch.testing.assert_close(pre, want[:, : pre.shape[1]], rtol=0, atol=0)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def _tiny_dual(taps=()):
    """A VisionTextDualEncoder-like object: the fused tiny vision tower, a projection and a
    temperature (all :func:`finetune_tail` touches)."""
    from types import SimpleNamespace

    from galaxy_explorer.models.efficientnet_lite import fuse_batch_norms

    vm = fuse_batch_norms(_calibrated(_cfg(feature_taps=list(taps))))
    torch.manual_seed(1)
    return SimpleNamespace(
        vision_model=vm,
        visual_projection=torch.nn.Linear(8, 8, bias=False),
        logit_scale=torch.nn.Parameter(torch.tensor(2.6592)),
    )


def _data(model, start, n=48):
    torch.manual_seed(2)
    x = torch.randn(n, 3, 64, 64)
    with torch.no_grad():
        h, pre = model.vision_model.split_features(x, start)
    text = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    ids = torch.arange(n) % 4
    return h.half(), pre, text, ids


@pytest.mark.parametrize("taps", [(), (10, 14, 15)])
def test_finetune_trains_only_the_blocks_from_the_start_and_lowers_the_loss(taps):
    from galaxy_explorer.train import recipe_lite as RL

    start = 14
    model = _tiny_dual(taps)
    h, pre, text, ids = _data(model, start)
    bb = model.vision_model.backbone
    frozen = [p.detach().clone() for blk in bb._blocks[:start] for p in blk.parameters()]
    frozen += [p.detach().clone() for p in bb._conv_stem.parameters()]
    tail = [p.detach().clone() for p in RL.tail_parameters(model, start)]
    r = dict(
        RL.RECIPE,
        finetune_from=start,
        finetune_epochs=4,
        finetune_lr=3e-3,
        finetune_head_lr=3e-3,
        batch_size=16,
        class_loss=0.0,
    )
    rows = torch.arange(len(ids))
    hist = RL.finetune_tail(model, h, pre, rows, text, ids, r)
    assert len(hist) == 4 and hist[-1]["loss"] < hist[0]["loss"], hist
    after = [p for blk in bb._blocks[:start] for p in blk.parameters()]
    after += list(bb._conv_stem.parameters())
    assert all(torch.equal(a, b) for a, b in zip(after, frozen, strict=True))
    changed = [
        not torch.equal(a, b) for a, b in zip(RL.tail_parameters(model, start), tail, strict=True)
    ]
    assert all(changed[:4]), "the first fine-tuned block did not learn"
    assert sum(changed) >= 0.9 * len(changed)
    assert not model.vision_model.training


def test_finetune_refuses_an_unfused_tower():
    from types import SimpleNamespace

    from galaxy_explorer.train import recipe_lite as RL

    m = SimpleNamespace(vision_model=_calibrated(_cfg()))
    with pytest.raises(ValueError, match="fused"):
        RL.finetune_tail(m, None, None, torch.arange(2), None, None, dict(RL.RECIPE))


def test_wise_interpolation_is_exact_at_both_ends_and_linear_between():
    from galaxy_explorer.train.recipe_lite import wise_interpolate

    before = [torch.zeros(3), torch.ones(2, 2)]
    for alpha, want in ((0.0, before), (1.0, None), (0.25, None)):
        now = [torch.full((3,), 4.0), torch.full((2, 2), 5.0)]
        ref = [t.clone() for t in now]
        wise_interpolate(now, before, alpha)
        exp = want or [(1 - alpha) * b + alpha * t for b, t in zip(before, ref, strict=True)]
        for a, b in zip(now, exp, strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-7)
    with pytest.raises(ValueError, match="differ"):
        wise_interpolate([torch.zeros(1)], [], 0.5)


def test_everyday_rows_are_the_images_with_everyday_pairs_adds():
    """The fine-tuning stage finds each extra pair's image through these rows; they must be
    the ones with_everyday_pairs duplicated (its features are those rows' features)."""
    from galaxy_explorer.train import recipe_lite as RL

    labels = ["elliptical", "irregular", "spiral", "edge_on"] * 30
    feats = torch.arange(len(labels), dtype=torch.float32).view(-1, 1)
    text = torch.nn.functional.normalize(torch.randn(2, 8), dim=-1)
    ids = torch.zeros(len(labels), dtype=torch.long)
    r = dict(RL.RECIPE, everyday_fraction=0.4, everyday_skip=["irregular"], everyday_span=2)
    mp = pytest.MonkeyPatch()
    mp.setattr(
        RL,
        "caption_text_features",
        lambda m, t, caps, n: (torch.nn.functional.normalize(torch.ones(len(caps), 8), dim=-1), 0),
    )
    try:
        f2, *_ = RL.with_everyday_pairs(None, None, feats, text, ids, labels, r)
    finally:
        mp.undo()
    rows = RL.everyday_rows(labels, r)
    assert len(rows) > 10
    assert f2[len(labels) :, 0].long().tolist() == rows
    assert all(labels[i] != "irregular" for i in rows)


def test_feature_cache_key_changes_with_the_finetune_block(tmp_path):
    """A cache without block inputs must not be reused by a fine-tuning run (and the earlier
    caches keep their names)."""
    from galaxy_explorer.train import recipe_lite as RL

    r = dict(RL.RECIPE, finetune_from=0)
    old = {k: v for k, v in r.items() if k != "finetune_from"}
    base = RL.feature_cache_path(tmp_path, 10, 1, r)
    assert base == RL.feature_cache_path(tmp_path, 10, 1, old)
    assert RL.feature_cache_path(tmp_path, 10, 1, dict(r, finetune_from=14)) != base


def test_backbone_features_also_return_the_block_inputs():
    """What cached_feature_set stores for fine-tuning: block k's input maps next to the very
    features the head trains on."""
    from galaxy_explorer.train import recipe_lite as RL

    m = _calibrated(_cfg(feature_taps=[10, 14]))
    rng = np.random.default_rng(0)
    rgbs = [rng.integers(0, 255, (80, 80, 3), dtype="uint8") for _ in range(5)]
    plain = RL.backbone_features(m, rgbs, 64, batch=2)
    acts: list = []
    f = RL.backbone_features(m, rgbs, 64, batch=2, acts=acts, acts_from=14)
    a = torch.cat(acts)
    assert a.dtype == torch.float16 and a.shape[:2] == (5, 192)
    np.testing.assert_allclose(f, plain, rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        again = m.features_from(
            a.float(), 14, torch.as_tensor(f[:, : RL.pre_tap_width(m.config, 14)])
        )
    np.testing.assert_allclose(again.numpy(), plain, rtol=0.05, atol=0.05)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_recipe_stage_two_fine_tunes_then_interpolates_back(alpha):
    """recipe_lite's second stage on a tiny tower: with wise_alpha 0 the weights are the
    first stage's exactly (and so is the validation zero-shot); with 1 they moved. The
    everyday pairs' images are found by row."""
    from types import SimpleNamespace

    from galaxy_explorer.train import recipe_lite as RL
    from galaxy_explorer.train.recipe import load_paraphrase_queries

    names = list(load_paraphrase_queries()[1])
    start = 14
    model = _tiny_dual((10, 14))
    model.config = SimpleNamespace()
    vm = model.vision_model
    torch.manual_seed(3)

    def part(n):
        x = torch.randn(n, 3, 64, 64)
        with torch.no_grad():
            h, pre = vm.split_features(x, start)
            f = vm.features_from(h, start, pre)
        return {"acts": h.half(), "feats": f.half(), "labels": [names[i % 7] for i in range(n)]}

    tr, val = part(40), part(14)
    r = dict(
        RL.RECIPE,
        finetune_from=start,
        finetune_epochs=2,
        batch_size=16,
        everyday_fraction=0.3,
        wise_alpha=alpha,
    )
    n_rows = 40 + len(RL.everyday_rows(tr["labels"], r))
    text = torch.nn.functional.normalize(torch.randn(5, 8), dim=-1)
    ids = torch.arange(n_rows) % 5
    pe = torch.nn.functional.normalize(torch.randn(7, 8), dim=-1)
    before = [p.detach().clone() for p in RL.tail_parameters(model, start)]
    zs0 = RL.head_zero_shot(model, val["feats"].float(), val["labels"], pe)
    hist = RL._finetune(model, tr, val, pe, text, ids, None, r)
    after = RL.tail_parameters(model, start)
    same = all(torch.equal(a, b) for a, b in zip(after, before, strict=True))
    assert same == (alpha == 0.0)
    assert [h.get("finetune_epoch") for h in hist[:-1]] == [1, 2]
    assert hist[-1]["wise_alpha"] == alpha
    if alpha == 0.0:
        assert hist[-1]["val_zero_shot"] == pytest.approx(zs0, abs=1 / 14 + 1e-9)
