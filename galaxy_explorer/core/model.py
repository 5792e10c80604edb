"""Load any CLIP-compatible model and embed images and text with it.

One adapter (:class:`ClipAdapter`) serves every CLIP-family model from transformers:
``CLIPModel``, ``VisionTextDualEncoderModel`` and any other model that exposes
``get_image_features`` / ``get_text_features``. A model is named by a Hugging Face hub id
(``juppy44/galaxy-clip-finetuned``) or a local folder saved with ``save_pretrained``.

Image preprocessing (resize shortest edge, centre crop, normalise with the model's own
mean / std / size) runs here on tensors rather than through ``CLIPImageProcessor``'s slow
per-image PIL fallback. It is thread-safe, so decoding threads can preprocess while the
model computes.

Weights are loaded from safetensors only and never with remote code: a model folder is
untrusted input.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

# device, bf16 and preprocessing settings are shared with the trainer (galaxy_explorer.train);
# DEVICES, PRECISIONS and pick_device stay importable from here
from galaxy_explorer.core.device import DEVICES as DEVICES
from galaxy_explorer.core.device import PRECISIONS as PRECISIONS
from galaxy_explorer.core.device import cpu_has_fast_bf16 as cpu_has_fast_bf16
from galaxy_explorer.core.device import pick_device as pick_device

# where models come from (shared with galaxy_explorer.core.hub); importable from here
from galaxy_explorer.core.model_source import DEFAULT_HUB_MODEL as DEFAULT_HUB_MODEL
from galaxy_explorer.core.model_source import ModelLoadError as ModelLoadError
from galaxy_explorer.core.model_source import bundled_model_path as bundled_model_path
from galaxy_explorer.core.model_source import hub_cache_dir as hub_cache_dir
from galaxy_explorer.core.preprocess import read_image_config

if TYPE_CHECKING:  # pragma: no cover
    import torch

log = logging.getLogger(__name__)


def _hub_snapshot(repo_id: str, *, local_only: bool, revision: str | None = None) -> Path | None:
    """Local snapshot folder of a hub model, downloading it only when ``local_only`` is false.

    The download (:mod:`galaxy_explorer.core.hub`) fetches only the files a model needs and
    verifies them; its one-line error becomes a :class:`ModelLoadError`.
    """
    from galaxy_explorer.core import hub

    snap = hub.local_snapshot(repo_id, revision, cache_dir=hub_cache_dir())
    if snap is not None or local_only:
        return snap
    try:
        return hub.download(repo_id, revision, cache_dir=hub_cache_dir())
    except hub.HubError as exc:
        raise ModelLoadError(str(exc)) from None


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


def resolve_model_spec(spec: str | os.PathLike[str] | None = "auto") -> str:
    """Turn a user's model argument into a local folder or a hub id.

    ``auto`` (the default) means the seed model ``juppy44/galaxy-clip-finetuned`` if it is
    already in the local Hugging Face cache, else the bundled model. Nothing is downloaded
    for ``auto``.
    """
    if spec is None or str(spec) == "auto":
        from galaxy_explorer.core.hub import auto_model_spec

        return auto_model_spec()
    return str(spec)


def _model_folder(spec: str) -> tuple[Path, str]:
    """Local folder holding the model, and a revision string for the model key."""
    p = Path(spec).expanduser()
    if p.exists():
        if not p.is_dir():
            raise ModelLoadError(f"{spec}: a model must be a folder saved with save_pretrained")
        if not (p / "config.json").exists():
            raise ModelLoadError(f"{spec}: not a model folder (no config.json)")
        return p.resolve(), "folder"
    from galaxy_explorer.core.hub import split_spec

    repo_id, revision = split_spec(spec)  # "org/name@revision" (--model ... --revision R)
    if repo_id.startswith((".", "/", "~", "\\")) or repo_id.count("/") != 1 or "\\" in repo_id:
        raise ModelLoadError(f"{spec}: no such model folder")
    snap = _hub_snapshot(repo_id, local_only=True, revision=revision)
    if snap is None and not _offline():
        log.info("downloading %s from the Hugging Face hub", spec)
        snap = _hub_snapshot(repo_id, local_only=False, revision=revision)
    if snap is None:
        raise ModelLoadError(
            f"{spec}: not in the local Hugging Face cache and downloads are disabled "
            "(HF_HUB_OFFLINE=1); download it on a machine with internet or pass a local folder"
        )
    return snap, snap.name  # snapshot folders are named by commit hash


def _folder_digest(folder: Path) -> str:
    """Content hash of a model folder's config, processor and weight files."""
    h = hashlib.sha256()
    for f in sorted(folder.iterdir()):
        if f.suffix in (".json", ".safetensors", ".txt", ".model") and f.is_file():
            h.update(f.name.encode())
            with open(f, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()[:16]


def resize_and_crop(rgb: np.ndarray, resize: int, crop: int) -> torch.Tensor:
    """(H, W, 3) uint8 → (3, crop, crop) float32 in 0–255, as CLIP's image processor does.

    The shortest edge goes to ``resize`` (bicubic, antialiased), then a centre crop of
    ``crop``. The one image geometry of the project: inference and training both use it.
    """
    import torch
    import torch.nn.functional as F

    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB array, got shape {rgb.shape}")
    if not rgb.flags.writeable or not rgb.flags.c_contiguous:
        rgb = np.array(rgb, copy=True, order="C")
    x = torch.from_numpy(rgb).permute(2, 0, 1).float()
    h, w = x.shape[1:]
    scale = resize / min(h, w)
    nh, nw = max(resize, round(h * scale)), max(resize, round(w * scale))
    if (nh, nw) != (h, w):
        x = F.interpolate(
            x[None], size=(nh, nw), mode="bicubic", antialias=True, align_corners=False
        )[0]
    top, left = max(0, (nh - crop) // 2), max(0, (nw - crop) // 2)
    x = x[:, top : top + crop, left : left + crop]
    if x.shape[1] != crop or x.shape[2] != crop:  # crop larger than the resized image
        x = F.interpolate(x[None], size=(crop, crop), mode="bicubic", align_corners=False)[0]
    return x


# vision towers whose depthwise convolutions run far slower under CPU bf16 autocast than in
# fp32 (EfficientNet-Lite0 at 224 px, batch 64: 0.4 vs 5 images/s on the shared 2-core CPU)
_FP32_ON_CPU_VISION = ("galaxy-efficientnet-lite",)


def _slow_autocast_on_cpu(model: Any) -> bool:
    vision = getattr(getattr(model, "config", None), "vision_config", None)
    return getattr(vision, "model_type", None) in _FP32_ON_CPU_VISION


def _unwrap(out: Any, kind: str) -> torch.Tensor:
    """``get_*_features`` returns a tensor (transformers 4) or an output object (5)."""
    import torch

    if isinstance(out, torch.Tensor):
        return out
    for name in (f"{kind}_embeds", "pooler_output"):
        val = getattr(out, name, None)
        if isinstance(val, torch.Tensor):
            return val
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    raise ModelLoadError(f"model returned no {kind} features ({type(out).__name__})")


#: top-level submodules of a dual encoder that belong to the image side
_VISION_HINTS = ("vision", "visual", "image")


def _read_tensors(where: dict[str, Path]) -> dict[str, Any]:
    """The named tensors, each read from the safetensors file that holds it."""
    from safetensors import safe_open

    by_file: dict[Path, list[str]] = {}
    for key, f in where.items():
        by_file.setdefault(f, []).append(key)
    out: dict[str, Any] = {}
    for f, keys in by_file.items():
        with safe_open(str(f), framework="pt") as fh:
            for key in keys:
                out[key] = fh.get_tensor(key)
    return out


def _text_first_model(folder: Path) -> tuple[Any, dict[str, Path]] | None:
    """The model with only its text side's weights read, and where the rest are.

    The model is built without initialising weights (untouched memory costs nothing), the
    text tower's tensors are read from the safetensors files, and the image tower's are
    left for :meth:`ClipAdapter._load_vision`, the first time an image is embedded. A
    text query over a cached catalogue then never reads the image tower. Returns None
    (load everything the usual way) where the checkpoint's names do not match the model's
    exactly or the image side cannot be told apart.
    """
    import torch
    from safetensors import safe_open
    from transformers import AutoConfig, AutoModel

    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # pragma: no cover - other transformers versions
        return None
    where: dict[str, Path] = {}
    for f in sorted(folder.glob("*.safetensors")):
        with safe_open(str(f), framework="pt") as fh:
            for key in fh.keys():  # noqa: SIM118 - safe_open is not a mapping
                where.setdefault(key, f)
    config = AutoConfig.from_pretrained(folder, trust_remote_code=False)
    with no_init_weights():
        model = AutoModel.from_config(config, trust_remote_code=False, dtype=torch.float32)
    vision = {
        name for name, _ in model.named_children() if any(h in name.lower() for h in _VISION_HINTS)
    }
    expected = list(model.state_dict().keys())
    if not vision or any(k not in where for k in expected):
        return None
    text = {k: where[k] for k in expected if k.split(".", 1)[0] not in vision}
    pending = {k: where[k] for k in expected if k.split(".", 1)[0] in vision}
    if not pending or not text:
        return None
    tensors = {k: v.to(torch.float32) for k, v in _read_tensors(text).items()}
    missing, _ = model.load_state_dict(tensors, strict=False, assign=True)
    if set(missing) != set(pending):
        return None
    return model, pending


class ClipAdapter:
    """A CLIP-family model ready to embed images and text.

    Use :meth:`load`. Vectors are float32 and L2-normalised.

    Attributes
    ----------
    spec : str
        What the user asked for (hub id or folder).
    model_key : str
        Identifies the model and its preprocessing for the embedding cache: model id and
        revision (hub commit or folder content hash) plus the preprocessing config. The device
        and precision are deliberately not part of it, so embeddings made on a GPU node are
        reused on a laptop.
    device : str
    image_size : int
        Side of the square the vision tower sees.
    dim : int
        Embedding dimension.
    logit_scale : float
        The model's learnt temperature, exponentiated (CLIP: 100).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        folder: Path,
        spec: str,
        revision: str,
        device: str,
        precision: str,
        pending_vision: dict[str, Path] | None = None,
    ) -> None:
        import torch

        self.model = model
        self._pending_vision = pending_vision or None
        self.tokenizer = tokenizer
        self.folder = folder
        self.spec = spec
        self.revision = revision
        self.device = device
        self.precision = precision
        self.image_config = read_image_config(folder, model.config)
        self.image_size = int(self.image_config["crop"])
        self._mean = torch.tensor(self.image_config["mean"], dtype=torch.float32).view(3, 1, 1)
        self._std = torch.tensor(self.image_config["std"], dtype=torch.float32).view(3, 1, 1)
        ls = getattr(model, "logit_scale", None)
        self.logit_scale = (
            float(min(ls.detach().float().exp().item(), 100.0)) if ls is not None else 100.0
        )
        self._lock = threading.Lock()
        max_len = getattr(
            getattr(model.config, "text_config", None), "max_position_embeddings", None
        )
        tok_max = getattr(tokenizer, "model_max_length", None) or 77
        self.max_text_tokens = int(min(x for x in (max_len, tok_max, 512) if x))
        if self._pending_vision is not None:  # text tower only so far
            self.dim = int(getattr(model.config, "projection_dim", 0) or 0)
            if not self.dim:
                self.dim = int(self.embed_texts(["a"]).shape[-1])
        else:
            with torch.inference_mode():
                probe = self._image_forward(torch.zeros(1, 3, self.image_size, self.image_size))
            self.dim = int(probe.shape[-1])
        pre = json.dumps(self.image_config, sort_keys=True)
        # identity by content: a hub id + commit, or a hash of a folder's files; never a
        # path, so the same weights installed twice (wheel, checkout, a copy) share a cache
        ident = "folder" if Path(spec).expanduser().is_dir() else spec
        self.model_key = f"{ident}@{revision}#{hashlib.sha256(pre.encode()).hexdigest()[:8]}"

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(
        cls,
        spec: str | os.PathLike[str] | None = "auto",
        device: str = "auto",
        precision: str = "auto",
        *,
        text_first: bool = False,
    ) -> ClipAdapter:
        """Load a model by hub id or folder (``auto``: see :func:`resolve_model_spec`).

        Parameters
        ----------
        spec : str
            Hub id, local folder, or ``auto``.
        device : str
            ``auto``, ``cpu``, ``cuda`` or ``mps``.
        precision : str
            ``auto`` (fp16 on GPU; on the CPU bf16 autocast where the processor has native
            bf16 instructions, about 2x faster with embeddings at cosine > 0.9999 to fp32;
            else fp32; always fp32 on the CPU for the project's EfficientNet-Lite tower,
            whose depthwise convolutions are far slower under bf16 autocast), ``fp32``,
            ``fp16`` or ``bf16``.
        text_first : bool
            Read only the text tower's weights now, and the image tower's the first time
            an image is embedded (a text query over a cached catalogue never needs them).
            Falls back to a full load where the checkpoint's names do not match the
            model's.

        Raises
        ------
        ModelLoadError
            Unknown model, a folder that is not a model, weights not in safetensors, …
        ValueError
            A bad device or precision.
        """
        if precision not in PRECISIONS:
            raise ValueError(
                f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}"
            )
        dev = pick_device(device)
        resolved = resolve_model_spec(spec)
        folder, revision = _model_folder(resolved)
        if revision == "folder":
            revision = _folder_digest(folder)
        if not any(folder.glob("*.safetensors")):
            raise ModelLoadError(
                f"{resolved}: no safetensors weights (other formats are refused for safety)"
            )
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        from galaxy_explorer.models import register_architectures

        # the project's own architectures (e.g. the bundled EfficientNet-Lite tower) are built
        # from the project's code; a folder never supplies code
        register_architectures()
        auto_precision = precision == "auto"
        if precision == "auto":
            precision = (
                "fp16" if dev in ("cuda", "mps") else "bf16" if cpu_has_fast_bf16() else "fp32"
            )
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        pending = None
        try:
            built = _text_first_model(folder) if text_first else None
            if built is not None:
                model, pending = built
            else:
                model = AutoModel.from_pretrained(
                    folder, use_safetensors=True, trust_remote_code=False, dtype=torch.float32
                )
            tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
        except Exception as exc:  # noqa: BLE001 - transformers raises many kinds
            raise ModelLoadError(f"{resolved}: could not load model: {exc}") from exc
        finally:
            hf_logging.set_verbosity(verbosity)
            if bars:
                hf_logging.enable_progress_bar()
        if not (hasattr(model, "get_image_features") and hasattr(model, "get_text_features")):
            raise ModelLoadError(
                f"{resolved}: {type(model).__name__} is not a CLIP-style dual encoder "
                "(needs get_image_features and get_text_features)"
            )
        model.eval()
        if auto_precision and dev == "cpu" and _slow_autocast_on_cpu(model):
            precision = "fp32"
        dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        if dev != "cpu":  # on the CPU weights stay fp32; bf16 runs through autocast
            model.to(device=dev, dtype=dtype)
        name = DEFAULT_HUB_MODEL if resolved == DEFAULT_HUB_MODEL else resolved
        adapter = cls(model, tokenizer, folder, name, revision, dev, precision, pending)
        log.info("loaded %s (%s) on %s, %s, dim %d", name, revision, dev, precision, adapter.dim)
        return adapter

    # ------------------------------------------------------------ preprocessing
    def preprocess_one(self, rgb: np.ndarray) -> torch.Tensor:
        """One RGB uint8 (H, W, 3) image → normalised (3, S, S) float32 tensor.

        Thread-safe; uses bicubic resize of the shortest edge with antialiasing, then a
        centre crop, as CLIP's image processor does.
        """

        x = resize_and_crop(rgb, self.image_config["resize"], self.image_config["crop"])
        x = x.clamp_(0, 255) * self.image_config["rescale"]
        return (x - self._mean) / self._std

    def preprocess(self, rgbs: Sequence[np.ndarray]) -> torch.Tensor:
        """A batch of RGB uint8 images → (B, 3, S, S) float32 tensor."""
        import torch

        return torch.stack([self.preprocess_one(r) for r in rgbs])

    # ---------------------------------------------------------------- embedding
    def _autocast(self) -> Any:
        import contextlib

        import torch

        if self.device == "cpu" and self.precision == "bf16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _load_vision(self) -> None:
        """Read the image tower's weights if :meth:`load` left them (``text_first``)."""
        if self._pending_vision is None:
            return
        tensors = _read_tensors(self._pending_vision)
        param = next(self.model.parameters())
        if self.device != "cpu":
            tensors = {k: v.to(device=self.device, dtype=param.dtype) for k, v in tensors.items()}
        self.model.load_state_dict(tensors, strict=False)
        self._pending_vision = None
        log.debug("read the image tower of %s", self.spec)

    @property
    def image_tower_loaded(self) -> bool:
        """Whether the image tower's weights have been read."""
        return self._pending_vision is None

    def _image_forward(self, pixels: torch.Tensor) -> torch.Tensor:
        import torch

        self._load_vision()
        param = next(self.model.parameters())
        pixels = pixels.to(device=self.device, dtype=param.dtype, non_blocking=True)
        with self._autocast():
            feats = _unwrap(self.model.get_image_features(pixel_values=pixels), "image")
        feats = feats.float()
        return torch.nn.functional.normalize(feats, dim=-1)

    def embed_pixels(self, pixels: torch.Tensor) -> np.ndarray:
        """Embed a preprocessed batch (B, 3, S, S) → (B, dim) float32, L2-normalised."""
        import torch

        with self._lock, torch.inference_mode():
            return self._image_forward(pixels).cpu().numpy().astype(np.float32, copy=False)

    def embed_images(self, rgbs: Sequence[np.ndarray]) -> np.ndarray:
        """Embed RGB uint8 images → (B, dim) float32, L2-normalised."""
        if len(rgbs) == 0:
            return np.zeros((0, self.dim), np.float32)
        return self.embed_pixels(self.preprocess(rgbs))

    def embed_texts(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """Embed texts → (N, dim) float32, L2-normalised. Long texts are truncated."""
        import torch

        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        out = []
        with self._lock, torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                enc = self.tokenizer(
                    texts[i : i + batch_size],
                    padding=True,
                    truncation=True,
                    max_length=self.max_text_tokens,
                    return_tensors="pt",
                )
                enc = {
                    k: v.to(self.device)
                    for k, v in enc.items()
                    if k in ("input_ids", "attention_mask", "token_type_ids")
                }
                with self._autocast():
                    feats = _unwrap(self.model.get_text_features(**enc), "text").float()
                out.append(torch.nn.functional.normalize(feats, dim=-1).cpu().numpy())
        return np.concatenate(out).astype(np.float32, copy=False)

    def embed_labels(
        self, labels: Sequence[str], templates: Sequence[str] | None = None
    ) -> np.ndarray:
        """One vector per label: the mean over prompt templates, re-normalised.

        ``templates`` contain ``{}`` where the label goes (``"an image of a {}"``); without
        templates the label text itself is the prompt.
        """
        labels = list(labels)
        temps = [t for t in (templates or []) if t] or ["{}"]
        for t in temps:
            if "{}" not in t:
                raise ValueError(f"prompt template {t!r} has no '{{}}' placeholder for the label")
        prompts = [t.replace("{}", lab) for lab in labels for t in temps]
        vecs = self.embed_texts(prompts).reshape(len(labels), len(temps), -1).mean(axis=1)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return (vecs / np.maximum(norms, 1e-12)).astype(np.float32)

    def __repr__(self) -> str:
        return f"ClipAdapter({self.spec!r}, device={self.device!r}, dim={self.dim})"
