"""One device / bf16 decision for inference (core.model) and training (train.train)."""

from __future__ import annotations

import pytest

from galaxy_explorer.core import device as device_mod
from galaxy_explorer.core.device import has_fast_bf16, pick_device


def test_pick_device_validates_and_prefers_gpus(monkeypatch):
    import torch

    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        pick_device("gpu")
    assert pick_device("CPU") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device("auto") == pick_device("") == "cpu"
    with pytest.raises(ValueError, match="no CUDA GPU"):
        pick_device("cuda")
    with pytest.raises(ValueError, match="MPS is not available"):
        pick_device("mps")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert pick_device("auto") == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("auto") == "cuda"


def test_fast_bf16_per_device(monkeypatch):
    import torch

    monkeypatch.setattr(device_mod, "cpu_has_fast_bf16", lambda: True)
    assert has_fast_bf16("cpu") is True
    assert has_fast_bf16("mps") is False
    monkeypatch.setattr(device_mod, "cpu_has_fast_bf16", lambda: False)
    assert has_fast_bf16("cpu") is False
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert has_fast_bf16("cuda") is True
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert has_fast_bf16("cuda") is False


def test_cpu_has_fast_bf16_matches_torch():
    import torch

    expected = any(
        getattr(torch.cpu, n, lambda: False)()
        for n in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    )
    assert device_mod.cpu_has_fast_bf16() is expected


def test_the_model_loader_uses_the_shared_code():
    from galaxy_explorer.core import model

    assert model.pick_device is pick_device
    assert model.cpu_has_fast_bf16 is device_mod.cpu_has_fast_bf16
    assert model.DEVICES == device_mod.DEVICES and model.PRECISIONS == device_mod.PRECISIONS
