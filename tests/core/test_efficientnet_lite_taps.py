"""Multi-scale features of the EfficientNet-Lite tower (``feature_taps``): pooled statistics
of intermediate blocks concatenated to the head's input. A config without the key (every
model saved before it existed) must behave exactly as before."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_efficientnet_lite import _tiny_lite_dual_encoder

torch = pytest.importorskip("torch")


def _calibrated(cfg):
    from galaxy_explorer.models.efficientnet_lite import EfficientNetLiteVisionModel

    torch.manual_seed(0)
    m = EfficientNetLiteVisionModel(cfg)
    with torch.no_grad():  # batch norms with non-trivial statistics
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.normal_(0, 0.2)
                mod.running_var.uniform_(0.5, 2.0)
    return m.eval()


def test_a_config_without_the_key_is_the_plain_average_model():
    """Old configs (no ``feature_taps``): head input = the 1,280-d average of the head conv,
    pooler output = head(that), as the model computed before the key existed."""
    from galaxy_explorer.models.efficientnet_lite import EfficientNetLiteConfig

    old = EfficientNetLiteConfig(image_size=64, head_hidden=32, hidden_size=16).to_dict()
    old.pop("feature_taps")
    cfg = EfficientNetLiteConfig.from_dict(old)
    assert cfg.feature_taps == []
    m = _calibrated(cfg)
    assert m.head.fc1.in_features == 1280
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():  # the model runs channels-last (same numbers only in that layout)
        ref_map = m.backbone(x.contiguous(memory_format=torch.channels_last))
        ref = m.head(ref_map.mean(dim=(2, 3)))
        out = m(pixel_values=x)
    torch.testing.assert_close(out.last_hidden_state, ref_map, rtol=0, atol=0)
    torch.testing.assert_close(out.pooler_output, ref, rtol=0, atol=0)
    torch.testing.assert_close(m.pooled_features(x), ref_map.mean(dim=(2, 3)), rtol=0, atol=0)


def test_tapped_features_are_the_blocks_pooled_statistics():
    from galaxy_explorer.models.efficientnet_lite import EfficientNetLiteConfig, feature_dim

    taps = [4, 7, 15]
    m = _calibrated(EfficientNetLiteConfig(image_size=64, head_hidden=8, feature_taps=taps))
    assert feature_dim(taps) == 1280 + 4 * (40 + 80 + 320) == m.head.fc1.in_features
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        f = m.pooled_features(x)
        h = m.backbone.stem(x)
        want = []
        for i, blk in enumerate(m.backbone._blocks):
            h = blk(h)
            if i in taps:
                a = h.shape[2] // 4
                c = h[:, :, a : h.shape[2] - a, a : h.shape[3] - a]
                want += [
                    h.mean((2, 3)),
                    h.amax((2, 3)),
                    c.mean((2, 3)),
                    h.std((2, 3), correction=0),
                ]
        want.append(m.backbone.top(h).mean((2, 3)))
        out = m(pixel_values=x)
    assert f.shape == (3, feature_dim(taps))
    torch.testing.assert_close(f, torch.cat(want, 1), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.pooler_output, m.head(f), rtol=1e-5, atol=1e-5)
    # the centre statistic differs from the mean: a spot in the corner vs in the middle
    assert not torch.allclose(f[:, 1280:1320], f[:, 1360:1400])


def test_fused_batch_norms_keep_the_tapped_function():
    from galaxy_explorer.models.efficientnet_lite import EfficientNetLiteConfig, fuse_batch_norms

    m = _calibrated(EfficientNetLiteConfig(image_size=64, head_hidden=8, feature_taps=[10, 14]))
    f = fuse_batch_norms(m)
    assert f.config.feature_taps == [10, 14]
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(
            m(pixel_values=x).pooler_output, f(pixel_values=x).pooler_output, atol=1e-4, rtol=1e-4
        )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(head_hidden=8, feature_taps=[16]), "block indices 0-15"),
        (dict(head_hidden=8, feature_taps=[-1]), "block indices 0-15"),
        (dict(head_hidden=0, feature_taps=[4]), "needs a head"),
    ],
)
def test_bad_taps_are_refused_clearly(kwargs, match):
    from galaxy_explorer.models.efficientnet_lite import EfficientNetLiteConfig

    with pytest.raises(ValueError, match=match):
        EfficientNetLiteConfig(**kwargs)


def test_a_tapped_model_saves_and_loads_through_the_adapter(tmp_path):
    """Saved as safetensors + JSON (the taps in the config), rebuilt by the adapter from the
    project's code with the same embeddings."""
    from galaxy_explorer.core.model import ClipAdapter, _unwrap

    folder = _tiny_lite_dual_encoder(tmp_path / "lite", feature_taps=[4, 10])
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["vision_config"]["feature_taps"] == [4, 10]
    a = ClipAdapter.load(str(folder), device="cpu", precision="fp32")
    assert a.model.vision_model.head.fc1.in_features == 1280 + 4 * (40 + 112)
    rng = np.random.default_rng(1)
    rgbs = [rng.integers(0, 255, (40, 47, 3), dtype=np.uint8) for _ in range(3)]
    got = a.embed_images(rgbs)
    with torch.no_grad():
        ref = _unwrap(a.model.get_image_features(pixel_values=a.preprocess(rgbs)), "image")
    np.testing.assert_allclose(got, torch.nn.functional.normalize(ref, dim=-1).numpy(), atol=1e-5)
    assert np.ptp(got, axis=0).max() > 1e-3


def test_recipe_feature_cache_key_changes_only_with_taps(tmp_path):
    """Feature caches made before the key existed stay valid; tapped features get their own."""
    from galaxy_explorer.train import recipe_lite as RL

    r = dict(RL.RECIPE, feature_taps=())
    old = {k: v for k, v in r.items() if k != "feature_taps"}
    assert RL.feature_cache_path(tmp_path, 10, 1, r) == RL.feature_cache_path(tmp_path, 10, 1, old)
    tapped = RL.feature_cache_path(tmp_path, 10, 1, dict(r, feature_taps=[4, 7]))
    assert tapped != RL.feature_cache_path(tmp_path, 10, 1, r)


def test_tapped_head_standardises_its_input_and_keeps_it_through_save_and_fuse(tmp_path):
    """The recipe sets the head's per-feature standardisation from the training features;
    the buffers are part of the saved weights and survive folding the batch norms."""
    from galaxy_explorer.models.efficientnet_lite import (
        EfficientNetLiteConfig,
        EfficientNetLiteVisionModel,
        fuse_batch_norms,
    )
    from galaxy_explorer.train.recipe_lite import set_input_standardisation

    m = _calibrated(EfficientNetLiteConfig(image_size=64, head_hidden=8, feature_taps=[4]))
    x = torch.randn(6, 3, 64, 64)
    with torch.no_grad():
        f = m.pooled_features(x)
        before = m.head(f)
    set_input_standardisation(m.head, f, [4], tap_weight=0.5)
    torch.testing.assert_close(m.head.input_shift, f.mean(0))
    sd = f.std(0).clamp_min(1e-3)
    torch.testing.assert_close(m.head.input_scale[160:], sd[160:])  # head-conv average
    torch.testing.assert_close(m.head.input_scale[:160], sd[:160] / 0.5)  # block 4's stats
    with torch.no_grad():
        after = m.head(f)
        z = (f - f.mean(0)) / m.head.input_scale
        want = m.head.fc2(torch.nn.functional.gelu(m.head.fc1(m.head.norm(z))))
    torch.testing.assert_close(after, want)
    assert not torch.allclose(after, before)
    m.save_pretrained(tmp_path / "m")
    back = EfficientNetLiteVisionModel.from_pretrained(tmp_path / "m").eval()
    torch.testing.assert_close(back.head.input_scale, m.head.input_scale)
    fused = fuse_batch_norms(back)
    with torch.no_grad():  # folding rounds differently; dividing by small stds magnifies it
        torch.testing.assert_close(
            fused(pixel_values=x).pooler_output,
            m(pixel_values=x).pooler_output,
            atol=2e-3,
            rtol=1e-3,
        )


def test_an_untapped_head_has_no_standardisation_buffers():
    """Old models' weights have no such keys; the plain head must not expect them."""
    from galaxy_explorer.models.efficientnet_lite import EfficientNetLiteConfig

    m = _calibrated(EfficientNetLiteConfig(image_size=64, head_hidden=8))
    assert not any("input_s" in k for k in m.state_dict())


def test_a_subset_of_statistics_is_pooled_in_order():
    from galaxy_explorer.models.efficientnet_lite import EfficientNetLiteConfig, feature_dim

    full = _calibrated(EfficientNetLiteConfig(image_size=64, head_hidden=8, feature_taps=[10]))
    sub = _calibrated(
        EfficientNetLiteConfig(
            image_size=64, head_hidden=8, feature_taps=[10], tap_stats=["std", "mean"]
        )
    )
    assert sub.config.tap_stats == ["mean", "std"]  # TAP_STATS order, whatever was given
    assert sub.head.fc1.in_features == feature_dim([10], ["mean", "std"]) == 1280 + 2 * 112
    sub.backbone.load_state_dict(full.backbone.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        f, g = full.pooled_features(x), sub.pooled_features(x)
    # full: mean | max | centre | std | head conv; subset: mean | std | head conv
    torch.testing.assert_close(g, torch.cat([f[:, :112], f[:, 336:448], f[:, 448:]], 1))
    with pytest.raises(ValueError, match="tap_stats must be"):
        EfficientNetLiteConfig(head_hidden=8, feature_taps=[10], tap_stats=["median"])


def test_std_floor_limits_the_magnification_of_near_constant_features():
    from galaxy_explorer.models.efficientnet_lite import EfficientNetLiteConfig
    from galaxy_explorer.train.recipe_lite import set_input_standardisation

    cfg = EfficientNetLiteConfig(head_hidden=8, feature_taps=[10], tap_stats=["mean"])
    m = _calibrated(cfg)
    gen = torch.Generator().manual_seed(0)
    f = torch.randn(50, 112 + 1280, generator=gen)
    f[:, :56] *= 1e-2  # half of block 10's means hardly vary
    set_input_standardisation(m.head, f, [10], std_floor=0.5, tap_stats=["mean"])
    sd = f.std(0)
    block = m.head.input_scale[:112]
    assert float(block.min()) >= float(sd[:112].quantile(0.5)) - 1e-6
    torch.testing.assert_close(block[56:], torch.maximum(sd[56:112], block[56:]))
    assert float(m.head.input_scale[112:].min()) >= float(sd[112:].quantile(0.5)) - 1e-6
