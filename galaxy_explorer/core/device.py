"""Compute device and reduced-precision support: one answer for inference and training.

Qt-free; torch is imported inside the functions, so importing this module is free.
"""

from __future__ import annotations

#: device names accepted by :func:`pick_device`
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")
#: precision names accepted by the model loader and the trainer
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "fp16", "bf16")


def pick_device(requested: str = "auto") -> str:
    """Choose the compute device: ``cuda`` > ``mps`` > ``cpu`` for ``auto``.

    Parameters
    ----------
    requested : str
        ``auto``, ``cpu``, ``cuda`` or ``mps`` (case-insensitive; empty means ``auto``).

    Returns
    -------
    str
        The device to use.

    Raises
    ------
    ValueError
        For an unknown device name, or a device that is not available on this machine.
    """
    requested = (requested or "auto").lower()
    if requested not in DEVICES:
        raise ValueError(f"unknown device {requested!r}: choose one of {', '.join(DEVICES)}")
    import torch

    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if requested == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if requested == "cuda" and not cuda:
        raise ValueError("device 'cuda' requested but no CUDA GPU is available")
    if requested == "mps" and not mps:
        raise ValueError("device 'mps' requested but Apple MPS is not available")
    return requested


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU has native bf16 matrix instructions (AVX512-BF16 or AMX).

    Returns
    -------
    bool
    """
    import torch

    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        fn = getattr(torch.cpu, name, None)
        try:
            if fn is not None and fn():
                return True
        except Exception:  # noqa: BLE001 - private API; absence means no
            pass
    return False


def has_fast_bf16(device: str) -> bool:
    """Whether bf16 autocast runs fast on ``device``.

    Parameters
    ----------
    device : str
        A device as returned by :func:`pick_device`.

    Returns
    -------
    bool
        A CUDA GPU with bf16 support, or a CPU with native bf16 instructions
        (:func:`cpu_has_fast_bf16`); never on MPS.
    """
    if device == "cuda":
        import torch

        return bool(torch.cuda.is_bf16_supported())
    if device == "cpu":
        return cpu_has_fast_bf16()
    return False


__all__ = ["DEVICES", "PRECISIONS", "cpu_has_fast_bf16", "has_fast_bf16", "pick_device"]
