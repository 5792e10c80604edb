"""Model architectures defined by the project itself (not transformers classes).

A model folder never supplies code (no ``trust_remote_code``): an architecture named in a
folder's ``config.json`` that transformers does not know is built from the modules here,
after :func:`register_architectures` has told transformers' ``Auto*`` classes about them.
Importing this package is cheap; the submodules import torch / transformers.
"""

from __future__ import annotations


def register_architectures() -> None:
    """Register the project's own architectures with transformers' ``AutoConfig`` /
    ``AutoModel`` (idempotent).

    After this, ``AutoModel.from_pretrained(folder)`` builds e.g. a
    ``VisionTextDualEncoderModel`` whose vision tower is
    :class:`~galaxy_explorer.models.efficientnet_lite.EfficientNetLiteVisionModel`.
    """
    from galaxy_explorer.models.efficientnet_lite import register

    register()
