"""Text-first loading: a text query reads only the text tower's weights."""

from __future__ import annotations

import numpy as np
import pytest

from galaxy_explorer.core.model import ClipAdapter, bundled_model_path

TEXTS = ["a barred spiral galaxy", "an elliptical galaxy", "merging galaxies"]


def _read_keys(monkeypatch) -> list[str]:
    """Every tensor name read from a safetensors file, through either loading path."""
    import safetensors

    seen: list[str] = []
    real = safetensors.safe_open

    class Spy:
        def __init__(self, *a, **k):
            self._f = real(*a, **k)

        def __enter__(self):
            self._f.__enter__()
            return self

        def __exit__(self, *exc):
            return self._f.__exit__(*exc)

        def keys(self):
            return self._f.keys()

        def get_tensor(self, key):
            seen.append(key)
            return self._f.get_tensor(key)

        def __getattr__(self, name):
            return getattr(self._f, name)

    monkeypatch.setattr(safetensors, "safe_open", Spy)
    return seen


@pytest.mark.parametrize("which", ["tiny", "bundled"])
def test_text_first_reads_no_image_weights_until_an_image(which, tiny_model, monkeypatch):
    folder = tiny_model if which == "tiny" else bundled_model_path()
    full = ClipAdapter.load(str(folder), device="cpu", precision="fp32")
    seen = _read_keys(monkeypatch)
    lazy = ClipAdapter.load(str(folder), device="cpu", precision="fp32", text_first=True)
    assert not lazy.image_tower_loaded
    assert seen and not [k for k in seen if k.startswith(("vision_model.", "visual_projection."))]
    assert lazy.model_key == full.model_key and lazy.dim == full.dim
    np.testing.assert_allclose(lazy.embed_texts(TEXTS), full.embed_texts(TEXTS), atol=1e-6)
    assert not lazy.image_tower_loaded  # text embedding did not need the image tower
    # the first image reads the image tower, and the vectors are the full model's
    rng = np.random.default_rng(0)
    rgbs = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(2)]
    np.testing.assert_allclose(lazy.embed_images(rgbs), full.embed_images(rgbs), atol=1e-6)
    assert lazy.image_tower_loaded
    assert [k for k in seen if k.startswith("vision_model.")]
