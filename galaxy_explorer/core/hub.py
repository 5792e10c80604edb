"""Models on this machine and on the Hugging Face hub: list, name, download.

Three kinds of model are known:

* the **bundled** model (``resources/model``), always present;
* **hub** models in the local Hugging Face cache (``$HF_HUB_CACHE``, ``$HF_HOME/hub`` or
  ``~/.cache/huggingface/hub``), the same cache ``from_pretrained`` and ``--model auto`` use;
* any other **folder** saved with ``save_pretrained``.

:func:`download_job` fetches a hub model into that cache as a generator job (like
:mod:`galaxy_explorer.core.jobs`): it yields :class:`DownloadProgress` while it runs, stops
between chunks when its ``cancel`` event is set (or when the generator is closed), resumes
partial files with an HTTP ``Range`` request, fetches only the files an embedding model needs
(safetensors weights, config, tokenizer, processor config) and checks every file it fetched
(its size, and its sha256 for LFS files or its git blob hash for small files) before it
moves it into place. The layout is the hub's own (``models--org--name/blobs``,
``snapshots/<commit>``, ``refs/<revision>``), so transformers and ``huggingface_hub`` find
the files too. A snapshot folder is created only after every file of it is verified: an
interrupted download never looks like a complete model.

``HF_ENDPOINT`` names the server (default ``https://huggingface.co``), ``HF_HUB_OFFLINE=1``
refuses every download before any request, ``HF_TOKEN`` is sent to the endpoint when set.
Nothing here asks the user anything; callers do.

Model specs: a hub id may carry a revision as ``org/name@revision`` (``--model org/name
--revision R`` on the command line builds that); see :func:`split_spec`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from galaxy_explorer.core import model_source as _source
from galaxy_explorer.core.model_source import DEFAULT_HUB_MODEL

log = logging.getLogger(__name__)

__all__ = [
    "BUNDLED_DISPLAY_NAME",
    "DownloadPlan",
    "DownloadProgress",
    "HubError",
    "LocalModel",
    "RemoteFile",
    "SEED_MODEL",
    "auto_model_spec",
    "display_name",
    "download",
    "download_job",
    "format_bytes",
    "is_hub_id",
    "join_spec",
    "list_local_models",
    "local_snapshot",
    "plan_download",
    "split_spec",
]

#: The seed model offered for download: OpenAI CLIP fine-tuned on real galaxy images.
SEED_MODEL = DEFAULT_HUB_MODEL
#: What the bundled model is, unless its model card names it (``display_name:``).
BUNDLED_DISPLAY_NAME = "bundled galaxy model (trained on synthetic galaxies)"
DEFAULT_ENDPOINT = "https://huggingface.co"

#: Top-level files an embedding model needs; everything else in a repo is left on the hub.
NEEDED_FILES = (
    "*.safetensors",
    "*.safetensors.index.json",
    "config.json",
    "tokenizer*",
    "vocab*",
    "merges.txt",
    "special_tokens_map.json",
    "added_tokens.json",
    "preprocessor_config.json",
    "processor_config.json",
    "spiece.model",
    "sentencepiece*.model",
)
_SKIPPED_FILES = ("open_clip*",)  # OpenCLIP's own copy of the weights (not transformers')

#: ``model_type`` values (config.json) of the CLIP-style dual encoders the adapter loads.
CLIP_MODEL_TYPES = frozenset(
    {
        "clip",
        "chinese_clip",
        "altclip",
        "siglip",
        "siglip2",
        "vision-text-dual-encoder",
        "metaclip_2",
    }
)
_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


class HubError(Exception):
    """A download or hub look-up failed; the message is one line meant for the user."""


# ------------------------------------------------------------------------------ names
def split_spec(spec: str) -> tuple[str, str | None]:
    """``"org/name@rev"`` → ``("org/name", "rev")``; without ``@`` the revision is None."""
    spec = str(spec)
    if "@" in spec:
        repo, rev = spec.split("@", 1)
        return repo, (rev or None)
    return spec, None


def join_spec(repo_id: str, revision: str | None = None) -> str:
    """The model spec for a hub id at a revision (``main`` / None: the id alone)."""
    return repo_id if revision in (None, "", "main") else f"{repo_id}@{revision}"


def is_hub_id(spec: str) -> bool:
    """Whether ``spec`` names a hub model (``org/name[@rev]``) rather than a folder.

    An existing folder always wins: ``org/name`` relative to the working folder is a folder.
    """
    spec = str(spec)
    if spec in ("", "auto") or Path(spec).expanduser().exists():
        return False
    repo, _ = split_spec(spec)
    return bool(_REPO_RE.match(repo)) and "--" not in repo and ".." not in repo


def _check_repo_id(repo_id: str) -> None:
    if not _REPO_RE.match(repo_id) or "--" in repo_id or ".." in repo_id:
        raise HubError(
            f"{repo_id!r} is not a hub model id (expected ORG/NAME, "
            "e.g. juppy44/galaxy-clip-finetuned)"
        )


def _card_display_name(folder: Path) -> str | None:
    """``display_name:`` from the front matter of a model folder's README.md, if any."""
    try:
        with open(folder / "README.md", encoding="utf-8", errors="replace") as fh:
            head = fh.read(8192)
    except OSError:
        return None
    lines = head.splitlines()
    if not lines or lines[0].strip() != "---":
        return None
    for line in lines[1:]:
        if line.strip() == "---":
            break
        key, sep, value = line.partition(":")
        if sep and key.strip() == "display_name":
            value = value.strip().strip("'\"").strip()
            return " ".join(value.split()) or None
    return None


def _hub_repo_of(folder: Path) -> tuple[str, str] | None:
    """(repo id, commit) when ``folder`` is a snapshot folder of the hub cache layout."""
    parts = folder.parts
    if len(parts) >= 3 and parts[-2] == "snapshots" and parts[-3].startswith("models--"):
        return parts[-3][len("models--") :].replace("--", "/", 1), parts[-1]
    return None


def auto_model_spec() -> str:
    """What ``--model auto`` stands for now (nothing is downloaded).

    The seed model :data:`SEED_MODEL` if it is in the local Hugging Face cache, else the
    bundled model's folder.

    Raises
    ------
    ModelLoadError
        Neither is there.
    """
    snap = local_snapshot(DEFAULT_HUB_MODEL, None, cache_dir=_source.hub_cache_dir())
    if snap is not None and (snap / "config.json").exists():
        return DEFAULT_HUB_MODEL
    bundled = _source.bundled_model_path()
    if (bundled / "config.json").exists():
        return str(bundled)
    raise _source.ModelLoadError(
        f"no model available: {DEFAULT_HUB_MODEL} is not in the local Hugging Face cache "
        f"and the bundled model is missing at {bundled}; pass --model HUB_ID_OR_FOLDER"
    )


def display_name(spec: str | os.PathLike[str] | None) -> str:
    """A name that says what a model is, for the status bar, the CLI and CSV provenance.

    * the bundled model: the ``display_name:`` of its model card (README.md front matter) or
      :data:`BUNDLED_DISPLAY_NAME`;
    * a hub model: its hub id (with ``@revision`` when not ``main``), also when given as a
      snapshot folder of the cache;
    * another folder: its card's ``display_name:`` or the folder name;
    * ``auto``: the name of the model ``auto`` stands for now.
    """
    if spec is None or str(spec) == "auto":
        try:
            spec = auto_model_spec()
        except _source.ModelLoadError:
            return "no model"
    text = str(spec)
    path = Path(text).expanduser()
    try:
        exists = path.exists()
    except OSError:
        exists = False
    if exists:
        resolved = path.resolve()
        try:
            bundled = _source.bundled_model_path().resolve()
        except OSError:  # pragma: no cover - a name only
            bundled = None
        if resolved == bundled:
            return _card_display_name(resolved) or BUNDLED_DISPLAY_NAME
        hub = _hub_repo_of(resolved)
        if hub is not None:
            return f"{hub[0]}@{hub[1][:10]}"
        return _card_display_name(resolved) or resolved.name or text
    repo, rev = split_spec(text)
    return join_spec(repo, rev)


def format_bytes(n: float | None) -> str:
    """``1234567`` → ``"1.2 MB"`` (decimal units, as the hub shows sizes)."""
    if n is None:
        return "?"
    n = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


# ------------------------------------------------------------------------- local cache
def _repo_folder(repo_id: str, cache_dir: Path | None = None) -> Path:
    return Path(cache_dir or _source.hub_cache_dir()) / ("models--" + repo_id.replace("/", "--"))


def _ref_path(repo_folder: Path, revision: str) -> Path | None:
    refs = repo_folder / "refs"
    p = refs / revision
    try:
        if os.path.commonpath([refs.resolve(), p.resolve()]) != str(refs.resolve()):
            return None
    except (OSError, ValueError):
        return None
    return p


def _is_model_snapshot(folder: Path) -> bool:
    try:
        return (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))
    except OSError:
        return False


def local_snapshot(
    repo_id: str, revision: str | None = None, cache_dir: Path | None = None
) -> Path | None:
    """The cached snapshot folder of ``repo_id`` at ``revision`` (default ``main``), or None.

    Reads the cache layout only (``refs/<revision>`` → ``snapshots/<commit>``); a snapshot
    without ``config.json`` or safetensors weights does not count. Never touches the network.
    """
    rev = revision or "main"
    if not _REPO_RE.match(repo_id):
        return None
    folder = _repo_folder(repo_id, cache_dir)
    if _COMMIT_RE.match(rev):
        commit = rev
    else:
        ref = _ref_path(folder, rev)
        try:
            commit = ref.read_text(encoding="utf-8").strip() if ref is not None else ""
        except OSError:
            return None
        if not _COMMIT_RE.match(commit):
            return None
    snap = folder / "snapshots" / commit
    return snap if _is_model_snapshot(snap) else None


def _read_config(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_clip_compatible(folder: Path) -> bool:
    """Whether a model folder holds a CLIP-style dual encoder (by its config.json)."""
    cfg = _read_config(folder)
    if cfg is None:
        return False
    if str(cfg.get("model_type", "")) in CLIP_MODEL_TYPES:
        return True
    archs = cfg.get("architectures") or []
    return any(
        isinstance(a, str)
        and (
            a.endswith("CLIPModel")
            or a in ("VisionTextDualEncoderModel", "SiglipModel", "Siglip2Model")
        )
        for a in archs
    )


def _folder_size(folder: Path) -> int:
    total = 0
    try:
        for f in folder.iterdir():
            try:
                if f.is_file():
                    total += f.stat().st_size  # follows the cache's symlinks to blobs
            except OSError:
                pass
    except OSError:
        pass
    return total


@dataclass
class LocalModel:
    """A model available on this machine.

    Attributes
    ----------
    name : str
        What it is (:func:`display_name`).
    spec : str
        What to pass as ``--model`` (hub id, ``id@revision`` or folder).
    kind : str
        ``"bundled"``, ``"hub"`` or ``"folder"``.
    path : Path
        Folder holding the files.
    size : int
        Bytes on disk.
    revision : str
        Hub commit (hub models) or "".
    default : bool
        Whether ``--model auto`` picks it now.
    """

    name: str
    spec: str
    kind: str
    path: Path
    size: int
    revision: str = ""
    default: bool = False


def _hub_models(cache_dir: Path) -> list[LocalModel]:
    out: list[LocalModel] = []
    try:
        repos = sorted(p for p in cache_dir.iterdir() if p.name.startswith("models--"))
    except OSError:
        return out
    for repo_folder in repos:
        repo_id = repo_folder.name[len("models--") :].replace("--", "/", 1)
        refs: dict[str, list[str]] = {}
        refs_dir = repo_folder / "refs"
        try:
            for ref in sorted(refs_dir.rglob("*")):
                if ref.is_file():
                    commit = ref.read_text(encoding="utf-8").strip()
                    refs.setdefault(commit, []).append(ref.relative_to(refs_dir).as_posix())
        except OSError:
            pass
        try:
            snaps = sorted((repo_folder / "snapshots").iterdir())
        except OSError:
            continue
        for snap in snaps:
            if not _is_model_snapshot(snap) or not is_clip_compatible(snap):
                continue
            names = refs.get(snap.name, [])
            rev = "main" if "main" in names else (names[0] if names else snap.name)
            spec = join_spec(repo_id, rev)
            out.append(
                LocalModel(
                    name=display_name(spec),
                    spec=spec,
                    kind="hub",
                    path=snap,
                    size=_folder_size(snap),
                    revision=snap.name,
                )
            )
    return out


def list_local_models(
    cache_dir: Path | None = None, folders: list[Path] | None = None
) -> list[LocalModel]:
    """Every model on this machine: the bundled one, CLIP models in the hub cache, ``folders``.

    Parameters
    ----------
    cache_dir : Path, optional
        The Hugging Face hub cache (default: :func:`~galaxy_explorer.core.model.hub_cache_dir`).
    folders : list of Path, optional
        Extra model folders to list (e.g. one the user chose before); missing ones are skipped.

    Returns
    -------
    list of LocalModel
        Bundled first, then hub models by id, then the folders. Exactly one has
        ``default=True`` when ``--model auto`` finds a model.
    """
    cache = Path(cache_dir) if cache_dir is not None else _source.hub_cache_dir()
    out: list[LocalModel] = []
    bundled = _source.bundled_model_path()
    if (bundled / "config.json").is_file():
        out.append(
            LocalModel(
                name=display_name(str(bundled)),
                spec=str(bundled),
                kind="bundled",
                path=bundled,
                size=_folder_size(bundled),
            )
        )
    out += _hub_models(cache)
    seen = {m.path.resolve() for m in out}
    for f in folders or []:
        f = Path(f).expanduser()
        if f.is_dir() and (f / "config.json").is_file() and f.resolve() not in seen:
            seen.add(f.resolve())
            out.append(
                LocalModel(
                    name=display_name(str(f)),
                    spec=str(f.resolve()),
                    kind="folder",
                    path=f.resolve(),
                    size=_folder_size(f),
                )
            )
    # what ``auto`` picks: the seed model at main if cached (same rule as resolve_model_spec)
    seed = local_snapshot(SEED_MODEL, cache_dir=cache)
    for m in out:
        m.default = (m.spec == SEED_MODEL) if seed is not None else (m.kind == "bundled")
    return out


# ------------------------------------------------------------------------------ network
def endpoint() -> str:
    """The hub's address: ``$HF_ENDPOINT`` or https://huggingface.co (read at call time)."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` forbids network access (read at call time)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _refuse_offline(repo_id: str) -> None:
    if offline():
        raise HubError(
            f"{repo_id}: not downloaded: downloads are disabled (HF_HUB_OFFLINE=1); "
            "unset HF_HUB_OFFLINE to download"
        )


class _RedirectWithoutToken(urllib.request.HTTPRedirectHandler):
    """Follow redirects (the hub sends weights from a CDN) but never carry the token to
    another host; the ``Range`` header goes along, so resuming works through a redirect."""

    def redirect_request(
        self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> Any:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and (
            urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc
        ):
            new.remove_header("Authorization")
        return new


_OPENER = urllib.request.build_opener(_RedirectWithoutToken)


def _open(url: str, headers: dict[str, str] | None = None, timeout: float = 30.0) -> Any:
    """Open ``url`` with the hub's token (sent to the endpoint only) and a user agent."""
    h = {"User-Agent": "galaxy-explorer", **(headers or {})}
    token = os.environ.get("HF_TOKEN")
    if token and url.startswith(endpoint() + "/"):
        h["Authorization"] = f"Bearer {token}"
    return _OPENER.open(urllib.request.Request(url, headers=h), timeout=timeout)


def _net_reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or exc
    return str(reason).strip() or type(exc).__name__


@dataclass
class RemoteFile:
    """One file of a hub repo: name, size and the hash the hub gives for it."""

    name: str
    size: int | None
    sha256: str | None = None  # LFS files
    blob_id: str | None = None  # git blob sha1 (all files)

    @property
    def blob_name(self) -> str:
        """The file's name under ``blobs/`` (as ``huggingface_hub`` names it)."""
        return self.sha256 or self.blob_id or ""


@dataclass
class DownloadPlan:
    """What :func:`download_job` will fetch: one request to the hub's API, no file data.

    Attributes
    ----------
    repo_id, revision, commit : str
        The model, the revision asked for, and the commit it points to now.
    files : list of RemoteFile
        The needed files.
    cache_dir : Path
        The hub cache the files go to.
    """

    repo_id: str
    revision: str
    commit: str
    files: list[RemoteFile]
    cache_dir: Path
    endpoint: str = field(default_factory=endpoint)

    @property
    def total_bytes(self) -> int:
        return sum(f.size or 0 for f in self.files)

    @property
    def repo_folder(self) -> Path:
        return _repo_folder(self.repo_id, self.cache_dir)

    def _blob(self, f: RemoteFile) -> Path:
        return self.repo_folder / "blobs" / f.blob_name

    def present_bytes(self) -> int:
        """Bytes already here: complete files plus the parts of interrupted ones."""
        n = 0
        for f in self.files:
            blob = self._blob(f)
            for p in (blob, blob.with_name(blob.name + ".incomplete")):
                try:
                    n += min(p.stat().st_size, f.size or 0)
                    break
                except OSError:
                    continue
        return n

    def describe(self) -> str:
        """One line: how many files and bytes, and how much is already here."""
        have = self.present_bytes()
        text = (
            f"{self.repo_id}@{self.revision} ({self.commit[:10]}): {len(self.files)} files, "
            f"{format_bytes(self.total_bytes)}"
        )
        if have:
            text += f" ({format_bytes(have)} already here)"
        return text


def plan_download(
    repo_id: str,
    revision: str | None = None,
    *,
    cache_dir: Path | None = None,
    timeout: float = 30.0,
) -> DownloadPlan:
    """Ask the hub which files ``repo_id`` has at ``revision`` and pick the needed ones.

    Raises
    ------
    HubError
        Offline mode, a missing repo or revision, an unreachable server, a repo without
        safetensors weights or config.json. One line each.
    """
    rev = revision or "main"
    _check_repo_id(repo_id)
    _refuse_offline(repo_id)
    ep = endpoint()
    url = f"{ep}/api/models/{repo_id}/revision/{urllib.parse.quote(rev, safe='')}?blobs=true"
    try:
        with _open(url, {"Accept": "application/json"}, timeout) as resp:
            info = json.loads(resp.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        code = (exc.headers.get("X-Error-Code") or "") if exc.headers else ""
        if exc.code == 404 and code == "RevisionNotFound":
            raise HubError(f"{repo_id}: no revision {rev!r} on {ep}") from None
        if exc.code in (401, 403, 404):
            raise HubError(
                f"{repo_id}: no such model on {ep} (or it is private or gated; "
                "set HF_TOKEN for those)"
            ) from None
        raise HubError(f"{repo_id}: the hub answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise HubError(f"{repo_id}: cannot reach {ep}: {_net_reason(exc)}") from None
    commit = str(info.get("sha") or "")
    if not _COMMIT_RE.match(commit):
        raise HubError(f"{repo_id}: the hub gave no commit for revision {rev!r}")
    files = []
    for s in info.get("siblings") or []:
        name = str(s.get("rfilename", ""))
        if "/" in name or not any(fnmatch(name, p) for p in NEEDED_FILES):
            continue
        if any(fnmatch(name, p) for p in _SKIPPED_FILES):
            continue
        lfs = s.get("lfs") or {}
        size = lfs.get("size", s.get("size"))
        files.append(
            RemoteFile(
                name=name,
                size=int(size) if size is not None else None,
                sha256=lfs.get("sha256") or lfs.get("oid"),
                blob_id=s.get("blobId"),
            )
        )
    names = [f.name for f in files]
    if not any(n.endswith(".safetensors") for n in names):
        raise HubError(
            f"{repo_id}: has no safetensors weights (other formats are refused for safety)"
        )
    if "config.json" not in names:
        raise HubError(f"{repo_id}: not a transformers model (no config.json)")
    for f in files:
        if not f.blob_name or not re.fullmatch(r"[0-9a-f]{40,64}", f.blob_name):
            raise HubError(f"{repo_id}: the hub gave no hash for {f.name}")
    return DownloadPlan(
        repo_id,
        rev,
        commit,
        files,
        Path(cache_dir) if cache_dir is not None else _source.hub_cache_dir(),
        ep,
    )


@dataclass
class DownloadProgress:
    """Where a download stands.

    ``done`` / ``total`` are bytes over all needed files (files already here count as done);
    ``rate`` is bytes per second fetched in this run; ``eta`` seconds (None when unknown).
    """

    repo_id: str
    file: str
    done: int
    total: int
    files_done: int
    files_total: int
    rate: float = 0.0
    eta: float | None = None
    finished: bool = False
    cancelled: bool = False
    snapshot: Path | None = None

    def describe(self) -> str:
        """``"12.0 MB / 577.3 MB · 4.1 MB/s · ETA 2m18s"``."""
        bits = [f"{format_bytes(self.done)} / {format_bytes(self.total)}"]
        if self.rate > 0 and not self.finished:
            bits.append(f"{format_bytes(self.rate)}/s")
        if self.eta is not None and not self.finished:
            e = int(self.eta)
            bits.append("ETA " + (f"{e // 60}m{e % 60:02d}s" if e >= 60 else f"{e}s"))
        return " · ".join(bits)


def _git_blob_sha1(size: int) -> Any:
    h = hashlib.sha1(usedforsecurity=False)
    h.update(f"blob {size}\0".encode())
    return h


def _hash_prefix(h: Any, path: Path) -> None:
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)


def _link(snapshot: Path, name: str, blob: Path) -> None:
    """``snapshots/<commit>/<name>`` → ``../../blobs/<hash>`` (a copy where symlinks fail)."""
    dest = snapshot / name
    if dest.exists():
        return
    tmp = dest.with_name(f".{name}.{os.getpid()}.tmp")
    try:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        try:
            os.symlink(os.path.relpath(blob, snapshot), tmp)
        except OSError:  # no symlinks (Windows without developer mode): copy
            shutil.copyfile(blob, tmp)
        os.replace(tmp, dest)
    finally:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()


def _write_ref(repo_folder: Path, revision: str, commit: str) -> None:
    if revision == commit:
        return
    ref = _ref_path(repo_folder, revision)
    if ref is None:
        raise HubError(f"bad revision name {revision!r}")
    ref.parent.mkdir(parents=True, exist_ok=True)
    tmp = ref.with_name(f".{ref.name}.{os.getpid()}.tmp")
    tmp.write_text(commit, encoding="utf-8")
    os.replace(tmp, ref)


def download_job(
    plan: DownloadPlan,
    cancel: threading.Event | None = None,
    *,
    chunk_size: int = 1 << 20,
    timeout: float = 60.0,
    report_every: float = 0.1,
) -> Iterator[DownloadProgress]:
    """Fetch the files of ``plan`` into the hub cache, yielding progress.

    A generator job: iterate it to run it. Between chunks it stops when ``cancel`` is set
    (or the generator is closed), keeping the partial file (``blobs/<hash>.incomplete``) for
    the next run, which resumes it with an HTTP ``Range`` request. Every fetched file is
    checked against the size and hash the hub gave before it is moved into ``blobs/``; the
    ``snapshots/<commit>`` folder and ``refs/<revision>`` appear only when all files are in.
    The last value has ``finished=True`` and ``snapshot`` set, or ``cancelled=True``.

    Raises
    ------
    HubError
        Offline mode, network failure, a file cut short (the part is kept to resume), a size or
        hash mismatch (the bad part is deleted), another process downloading the same file.
    """
    from filelock import FileLock, Timeout

    _refuse_offline(plan.repo_id)
    cancel = cancel or threading.Event()
    blobs = plan.repo_folder / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    total = plan.total_bytes
    done = 0
    pending: list[RemoteFile] = []
    for f in plan.files:
        blob = plan._blob(f)
        part = blob.with_name(blob.name + ".incomplete")
        if blob.is_file() and (f.size is None or blob.stat().st_size == f.size):
            done += f.size or blob.stat().st_size
        else:
            pending.append(f)
            if part.is_file():
                done += min(part.stat().st_size, f.size or 0)
    files_done = len(plan.files) - len(pending)
    t0 = time.monotonic()
    fetched = 0  # bytes fetched in this run (for the rate)
    last_report = 0.0

    def progress(name: str, **kw: Any) -> DownloadProgress:
        elapsed = max(time.monotonic() - t0, 1e-6)
        rate = fetched / elapsed if fetched else 0.0
        eta = (total - done) / rate if rate > 0 and total else None
        return DownloadProgress(
            plan.repo_id, name, done, total, files_done, len(plan.files), rate=rate, eta=eta, **kw
        )

    yield progress(pending[0].name if pending else "")
    for f in pending:
        blob = plan._blob(f)
        part = blob.with_name(blob.name + ".incomplete")
        # the same lock file huggingface_hub uses, so `hf download` and this exclude each other
        lock_path = plan.cache_dir / ".locks" / plan.repo_folder.name / f"{f.blob_name}.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(lock_path), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise HubError(
                f"{plan.repo_id}: {f.name} is being downloaded by another process; "
                "wait for it or stop it"
            ) from None
        try:
            start = part.stat().st_size if part.exists() else 0
            if f.size is not None and start > f.size:
                done -= f.size
                part.unlink()
                start = 0
            hasher = hashlib.sha256() if f.sha256 else _git_blob_sha1(f.size or 0)
            url = (
                f"{plan.endpoint}/{plan.repo_id}/resolve/{plan.commit}/{urllib.parse.quote(f.name)}"
            )
            headers = {"Range": f"bytes={start}-"} if start else {}
            got = start
            if not (f.size is not None and start == f.size):
                try:
                    resp = _open(url, headers, timeout)
                except urllib.error.HTTPError as exc:
                    if exc.code == 416 and start:  # nothing left past the part: restart it
                        part.unlink()
                        done -= start
                        raise HubError(
                            f"{plan.repo_id}: {f.name}: the server refused to resume; "
                            "run again to download it afresh"
                        ) from None
                    raise HubError(
                        f"{plan.repo_id}: {f.name}: the hub answered {exc.code} {exc.reason}"
                    ) from None
                except (urllib.error.URLError, OSError) as exc:
                    raise HubError(
                        f"{plan.repo_id}: cannot reach {plan.endpoint}: {_net_reason(exc)}"
                    ) from None
                with resp:
                    status = getattr(resp, "status", 200)
                    if start and status != 206:  # the server ignored the Range: start over
                        log.info("%s: server ignored the range request; fetching it whole", f.name)
                        done -= start
                        start = got = 0
                    if start:
                        _hash_prefix(hasher, part)
                    with open(part, "ab" if start else "wb") as out:
                        while True:
                            if cancel.is_set():
                                out.flush()
                                yield progress(f.name, cancelled=True)
                                return
                            try:  # read1: what has arrived, so progress and cancel stay live
                                chunk = resp.read1(chunk_size)
                            except (OSError, urllib.error.URLError, ValueError) as exc:
                                chunk = b""
                                log.info("%s: connection broke: %s", f.name, exc)
                            except Exception as exc:  # http.client.IncompleteRead and kin
                                chunk = b""
                                log.info("%s: connection broke: %s", f.name, exc)
                            if not chunk:
                                break
                            out.write(chunk)
                            hasher.update(chunk)
                            got += len(chunk)
                            done += len(chunk)
                            fetched += len(chunk)
                            now = time.monotonic()
                            if now - last_report >= report_every:
                                last_report = now
                                yield progress(f.name)
                        out.flush()
                        os.fsync(out.fileno())
            else:
                _hash_prefix(hasher, part)
            if f.size is not None and got < f.size:
                raise HubError(
                    f"{plan.repo_id}: {f.name} was cut short ({format_bytes(got)} of "
                    f"{format_bytes(f.size)}); the part is kept: run again to resume"
                )
            if f.size is not None and got > f.size:
                part.unlink()
                raise HubError(
                    f"{plan.repo_id}: {f.name} is larger than the hub says "
                    f"({got} > {f.size} bytes); deleted, not installed"
                )
            digest = hasher.hexdigest()
            expected = f.sha256 or f.blob_id
            if expected and digest != expected:
                part.unlink()
                raise HubError(
                    f"{plan.repo_id}: {f.name} failed its checksum (got {digest[:12]}…, "
                    f"expected {expected[:12]}…); deleted, not installed: run again"
                )
            os.replace(part, blob)
            files_done += 1
            log.info("%s: %s verified (%d bytes)", plan.repo_id, f.name, got)
        finally:
            lock.release()
        yield progress(f.name)
    # every blob is in: now the snapshot folder and the ref, so it appears complete or not at all
    snapshot = plan.repo_folder / "snapshots" / plan.commit
    snapshot.mkdir(parents=True, exist_ok=True)
    for f in plan.files:
        _link(snapshot, f.name, plan._blob(f))
    _write_ref(plan.repo_folder, plan.revision, plan.commit)
    log.info("%s: %s in %s", plan.repo_id, format_bytes(total), snapshot)
    yield progress("", finished=True, snapshot=snapshot)


def download(
    repo_id: str,
    revision: str | None = None,
    *,
    cache_dir: Path | None = None,
    cancel: threading.Event | None = None,
    on_progress: Callable[[DownloadProgress], None] | None = None,
) -> Path:
    """Plan and run a download to the end; returns the snapshot folder.

    Raises
    ------
    HubError
        See :func:`plan_download` and :func:`download_job`; also when cancelled.
    """
    plan = plan_download(repo_id, revision, cache_dir=cache_dir)
    last = None
    for last in download_job(plan, cancel):
        if on_progress is not None:
            on_progress(last)
    if last is None or last.snapshot is None:
        raise HubError(f"{repo_id}: download cancelled; run again to resume")
    return last.snapshot
