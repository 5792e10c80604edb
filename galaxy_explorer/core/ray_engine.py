"""Embedding on a Ray cluster: Ray Data ``map_batches`` over a pool of model actors.

The driver (the process that runs ``galaxy-explorer embed DIR --engine ray``) scans the
folder, asks the cache which files it lacks, and sends their (content hash, path) pairs
through :meth:`ray.data.Dataset.map_batches` to an actor pool: one model per actor, one
GPU per actor where the cluster has GPUs, else CPU actors. Each actor decodes its files with
the same loader and model adapter as a local run, embeds them, writes the vectors as one
shard in the cache's own format (:func:`~galaxy_explorer.core.cache.write_shard_file`) into
a *staging* folder, and returns a small record: the shard's path, how many vectors it holds,
and the files that failed, with the reason.

Only the driver touches the cache's SQLite index: it adopts each shard
(:meth:`~galaxy_explorer.core.cache.EmbeddingStore.adopt_shard`, one transaction) and
records failures as they arrive, so a run stopped at any point keeps every shard adopted so
far. Shards written but not yet adopted when a driver dies stay in its staging folder; the
next run adopts them before it starts (each run holds a lock on its own staging folder, so a
live run's folder is never taken). A re-run therefore embeds only what is still missing.

The staging folder is inside the cache folder by default (``store-v2/ray-staging``); on a
real cluster it must be a folder every node can write and the driver can read at the same
path (a shared filesystem), while the cache and its index stay on the driver's own disk.

Ray is an optional dependency (``pip install 'galaxy-explorer[ray]'``); it is imported only
inside these functions.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from galaxy_explorer.core.cache import SHARD_SUFFIX, STORE_DIR, CacheError
from galaxy_explorer.core.imaging import RenderSettings
from galaxy_explorer.core.jobs import Progress, plan_embedding

if TYPE_CHECKING:  # pragma: no cover
    from galaxy_explorer.core.cache import EmbeddingStore
    from galaxy_explorer.core.catalog import Item
    from galaxy_explorer.core.model import ClipAdapter

try:  # POSIX advisory locks mark a staging folder as in use by a live driver
    import fcntl
except ImportError:  # pragma: no cover - Windows: leftovers are never adopted automatically
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

INSTALL_HINT = "--engine ray needs Ray Data: pip install 'galaxy-explorer[ray]'"
STAGING_DIR = "ray-staging"
_LOCK = ".lock"
#: Most records one actor call embeds and writes as one shard (2 MB at dim 512).
MAX_SHARD_ROWS = 2048


class RayUnavailableError(ImportError):
    """Ray (or Ray Data) cannot be imported; the message says how to install it."""


class RayEngineError(RuntimeError):
    """The Ray run could not start or a worker failed; the message is one line."""


def require_ray() -> Any:
    """Import Ray and Ray Data, or raise :class:`RayUnavailableError` with the install hint.

    Returns
    -------
    module
        The ``ray`` module.
    """
    try:
        import ray
        import ray.data  # noqa: F401 - Ray Data needs pyarrow/pandas, checked here
    except ImportError as exc:
        raise RayUnavailableError(f"{INSTALL_HINT} ({exc})") from None
    return ray


# ----------------------------------------------------------------------- pool plan
@dataclass(frozen=True)
class PoolPlan:
    """How many model actors to start and what each one reserves."""

    actors: int
    num_cpus: float
    num_gpus: float

    @property
    def device(self) -> str:
        return "cuda" if self.num_gpus else "cpu"


def plan_pool(
    nodes: Sequence[Mapping[str, float]], actors: int | None = None, use_gpu: bool | None = None
) -> PoolPlan:
    """Size the actor pool from the resources of the cluster's nodes.

    With GPUs (and ``use_gpu`` not False): several actors share each GPU (a fraction of it
    each), as many as the node's CPUs per GPU allow at 2 CPUs per actor, at most 8. Decoding
    is Python code that holds the GIL for part of its time, so one process decodes only a
    few hundred cutouts a second (the README's H200 run: 241/s from 8 threads), while a
    GPU embeds thousands: the decoding has to be spread over processes. Without GPUs: CPU
    actors of up to 4 CPUs each, as many as the cluster's CPUs allow. ``actors`` caps the
    count; the plan never asks for more than the cluster has, since Ray would then wait for
    ever.

    Parameters
    ----------
    nodes : sequence of mappings
        Each live node's resources, e.g. ``{"CPU": 16, "GPU": 2}``.
    actors : int, optional
        Upper bound on the pool size.
    use_gpu : bool, optional
        ``None``: use GPUs when the cluster has some.

    Raises
    ------
    RayEngineError
        The cluster has no CPUs (or no GPUs when ``use_gpu`` is True).
    """
    gpu_nodes = [n for n in nodes if n.get("GPU", 0) >= 1]
    if use_gpu is None:
        use_gpu = bool(gpu_nodes)
    if use_gpu:
        if not gpu_nodes:
            raise RayEngineError("GPU actors asked for, but the Ray cluster has no GPU")
        per_gpu = min(int(n.get("CPU", 0) // int(n["GPU"])) for n in gpu_nodes)
        cpus = min(2, per_gpu)
        share = max(1, min(8, per_gpu // cpus)) if cpus else 1  # actors per GPU
        fit = sum(int(n["GPU"]) * share for n in gpu_nodes)
        n_act = fit if actors is None else min(actors, fit)
        return PoolPlan(max(1, n_act), float(cpus), 1.0 / share)
    total = sum(int(n.get("CPU", 0)) for n in nodes)
    if total < 1:
        raise RayEngineError("the Ray cluster has no CPU to run model actors on")
    cpus = max(1, min(4, total // 2))
    fit = sum(int(n.get("CPU", 0) // cpus) for n in nodes) or 1
    n_act = fit if actors is None else min(actors, fit)
    if actors is not None and actors > fit:
        log.warning(
            "the cluster's CPUs hold %d actor(s) of %d CPU(s); using %d, not %d",
            fit,
            cpus,
            n_act,
            actors,
        )
    return PoolPlan(max(1, n_act), float(cpus), 0.0)


def shard_rows(todo: int, actors: int, limit: int = MAX_SHARD_ROWS) -> int:
    """Files per actor call (= per shard): about four calls per actor, at most ``limit``."""
    return max(1, min(limit, math.ceil(todo / max(1, 4 * actors))))


# ---------------------------------------------------------------------- the actor
class EmbedActor:
    """A Ray Data actor: one model, embedding a batch of files into one shard per call.

    The batch is ``{"sha": str array, "path": bytes array}``; the result is one row
    ``{"shard": path or "", "keys": JSON [sha, …] written, "failures": JSON [[sha, reason], …]}``.
    """

    def __init__(
        self,
        spec: str,
        device: str,
        precision: str,
        model_key: str,
        render: RenderSettings,
        staging: str,
        batch_size: int,
        workers: int,
        threads: int = 0,
    ) -> None:
        if threads:
            import torch

            torch.set_num_threads(int(threads))
        from galaxy_explorer.core.model import ClipAdapter

        self.adapter = ClipAdapter.load(spec, device=device, precision=precision)
        if self.adapter.model_key != model_key:
            raise RayEngineError(
                f"the model {spec!r} on this node is not the driver's ({self.adapter.model_key} "
                f"vs {model_key}): install the same weights on every node"
            )
        self.render = render
        self.staging = Path(staging)
        self.batch_size = int(batch_size)
        self.pool = ThreadPoolExecutor(
            max_workers=max(1, int(workers)), thread_name_prefix="ge-ray-decode"
        )

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        from galaxy_explorer.core.cache import write_shard_file
        from galaxy_explorer.core.jobs import _load_one

        shas = [str(s) for s in batch["sha"]]
        paths = [Path(os.fsdecode(bytes(p))) for p in batch["path"]]
        loaded = self.pool.map(lambda p: _load_one(self.adapter, p, self.render), paths)
        keys: list[str] = []
        vecs: list[np.ndarray] = []
        failures: list[list[str]] = []
        tensors: list[Any] = []
        ready: list[str] = []

        def flush() -> None:
            if tensors:
                vecs.append(self.adapter.embed_pixels(torch.stack(tensors)))
                keys.extend(ready)
                tensors.clear()
                ready.clear()

        for sha, res in zip(shas, loaded, strict=True):
            if isinstance(res, str):
                failures.append([sha, res])
                continue
            tensors.append(res)
            ready.append(sha)
            if len(tensors) >= self.batch_size:
                flush()
        flush()
        shard = ""
        if keys:
            a = self.adapter
            shard = str(
                write_shard_file(
                    self.staging, a.model_key, self.render.key(), a.dim, keys, np.concatenate(vecs)
                )
            )
        return {
            "shard": np.array([shard]),
            "keys": np.array([json.dumps(keys)]),
            "failures": np.array([json.dumps(failures)]),
        }


# ---------------------------------------------------------------------- staging
def default_staging_root(cache_root: Path | str) -> Path:
    """``<cache>/store-v2/ray-staging``: the staging root when none is given."""
    return Path(cache_root).expanduser() / STORE_DIR / STAGING_DIR


class _RunFolder:
    """This run's staging folder, locked for as long as the run lives."""

    def __init__(self, root: Path) -> None:
        self.path = root / f"run-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        self.path.mkdir(parents=True)
        self._fd: int | None = os.open(self.path / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def close(self, remove: bool) -> None:
        if remove and not any(self.path.glob(f"*{SHARD_SUFFIX}")):
            shutil.rmtree(self.path, ignore_errors=True)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def adopt_leftovers(store: EmbeddingStore, root: Path) -> int:
    """Adopt the shards that earlier, stopped runs left in ``root``; return vectors indexed.

    A run folder whose lock a live driver holds is left alone; so are shards of other
    models or renderings (their own runs adopt them). Emptied folders are removed.
    """
    if fcntl is None or not root.is_dir():
        return 0
    added = 0
    for run in sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("run-")):
        try:
            fd = os.open(run / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # a live run
            left = 0
            for shard in sorted(run.glob(f"*{SHARD_SUFFIX}")):
                try:
                    added += store.adopt_shard(shard)
                except ValueError as exc:  # another space, or not a shard
                    log.debug("staging: %s left as it is (%s)", shard, exc)
                    left += 1
            if not left:
                shutil.rmtree(run, ignore_errors=True)
        finally:
            os.close(fd)
    if added:
        log.info("adopted %d vector(s) left in %s by an earlier run", added, root)
    return added


# ------------------------------------------------------------------------- driver
def _cluster_nodes(ray: Any) -> list[dict[str, float]]:
    return [dict(n.get("Resources", {})) for n in ray.nodes() if n.get("Alive")]


class _DropProgressNotice(logging.Filter):
    """Ray Data announces that its own progress bars are off; ours are on."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Progress bars disabled")


def _quiet_ray_data() -> None:
    """Ray Data logs every execution at INFO; keep its warnings, unless we log at INFO."""
    if logging.getLogger().getEffectiveLevel() <= logging.INFO:
        return
    rd = logging.getLogger("ray.data")
    rd.setLevel(logging.WARNING)
    for h in rd.handlers:
        if not any(isinstance(f, _DropProgressNotice) for f in h.filters):
            h.addFilter(_DropProgressNotice())


def check_reachable(address: str | None, timeout: float = 5.0) -> None:
    """Fail fast on a ``HOST:PORT`` (or ``ray://HOST:PORT``) nobody listens on.

    ``ray.init`` retries an unreachable cluster address for minutes; a plain TCP connect
    answers in at most ``timeout`` seconds. ``auto``, ``local`` and ``None`` are not checked.

    Raises
    ------
    RayEngineError
        Nothing accepts connections at that address.
    """
    if not address or address in ("auto", "local"):
        return
    import socket

    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise RayEngineError(f"--address {address!r}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise RayEngineError(
            f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}"
        ) from None


def _connect(ray: Any, address: str | None) -> bool:
    """Connect to (or start) a Ray cluster; True when this call started the connection."""
    if ray.is_initialized():
        return False
    check_reachable(address)
    quiet = logging.getLogger().getEffectiveLevel() > logging.INFO
    kwargs: dict[str, Any] = {
        "logging_level": logging.ERROR if quiet else logging.INFO,
        "log_to_driver": not quiet,
    }
    if address in (None, "", "local"):
        kwargs["include_dashboard"] = False
    try:
        ray.init(address=address or None, **kwargs)
    except Exception as exc:  # noqa: BLE001 - Ray raises many kinds; one line for the user
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RayEngineError(
            f"cannot connect to the Ray cluster at {address or 'a new local one'}: {msg}"
        ) from None
    return True


def _worker_error(exc: BaseException) -> RayEngineError:
    """One line out of a Ray worker's wrapped exception (its root cause, if it has one)."""
    cause: BaseException | None = exc
    while cause is not None and getattr(cause, "cause", None) is not None:
        cause = cause.cause  # type: ignore[attr-defined]
    text = str(cause or exc).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    # a wrapped traceback ends with "ExcType: message"
    last = lines[-1] if lines else type(exc).__name__
    return RayEngineError(f"a Ray worker failed: {last}")


def ray_embed_job(
    items: Sequence[Item],
    adapter: ClipAdapter,
    store: EmbeddingStore,
    render: RenderSettings | None = None,
    *,
    address: str | None = None,
    actors: int | None = None,
    use_gpu: bool | None = None,
    precision: str = "auto",
    batch_size: int = 32,
    workers: int = 2,
    staging: Path | str | None = None,
    rows_per_shard: int | None = None,
    cancel: threading.Event | None = None,
    retry_failed: bool = False,
    announce: Callable[[str], None] | None = None,
) -> Iterator[Progress]:
    """Embed every item the store lacks on a Ray cluster, yielding :class:`Progress`.

    Same contract as :func:`galaxy_explorer.core.jobs.embed_job` (deduplication by content
    hash, earlier failures skipped unless ``retry_failed``, one progress per finished actor
    call, every shard adopted before its progress is yielded), with the work done by a pool
    of Ray actors.

    Parameters
    ----------
    items : sequence of Item
    adapter : ClipAdapter
        The driver's model: its ``spec``, ``model_key`` and ``dim`` name what the actors
        load (each checks its weights give the same model key).
    store : EmbeddingStore
        The cache space of ``adapter.model_key`` and ``render.key()``; only the driver
        writes its index.
    render : RenderSettings
    address : str, optional
        Ray cluster address (``auto``, ``ray://host:10001``, ``host:6379``); ``None`` or
        ``local`` starts a local Ray instance. An already initialised Ray is used as is.
    actors : int, optional
        Most model actors (default: what the cluster's resources hold, see
        :func:`plan_pool`).
    use_gpu : bool, optional
        Default: GPU actors when the cluster has GPUs.
    precision : str
        As for :meth:`ClipAdapter.load` on each actor.
    batch_size : int
        Images per model call.
    workers : int
        Decoding threads per actor (at least the CPUs the actor holds).
    staging : Path, optional
        Root of the staging folders (default :func:`default_staging_root`); on a real
        cluster, a shared folder every node sees at the same path.
    rows_per_shard : int, optional
        Files per actor call and per shard (default: about four calls per actor, at most
        2048).
    cancel : threading.Event, optional
        Set it to stop after the shards in flight; what is adopted stays.
    retry_failed : bool
    announce : callable, optional
        Called once with a line describing the pool (actors, device, files per shard).

    Raises
    ------
    RayUnavailableError
        Ray is not installed.
    RayEngineError
        The cluster cannot be reached or a worker failed (what was adopted is kept).
    """
    if batch_size < 1:
        raise ValueError("batch size must be at least 1")
    ray = require_ray()
    render = render or RenderSettings()
    root = Path(staging).expanduser() if staging else default_staging_root(store.root)
    if not getattr(store, "readonly", False):
        adopt_leftovers(store, root)  # before planning: adopted shards count as cached
    work = plan_embedding(items, store, retry_failed=retry_failed)
    by_sha, same_content, todo = work.by_sha, work.same_content, work.todo
    retried = set(store.failures()) & set(todo) if retry_failed else set()
    yield work.opening()
    if work.nothing_to_do:
        return

    started = _connect(ray, address)
    run: _RunFolder | None = None
    it_batches: Any = None
    try:
        import pyarrow as pa

        plan = plan_pool(_cluster_nodes(ray), actors, use_gpu)
        rows = rows_per_shard or shard_rows(len(todo), plan.actors)
        try:
            run = _RunFolder(root)
        except OSError as exc:
            raise CacheError(
                f"{root}: cannot create a staging folder: {exc.strerror or exc}"
            ) from None
        per = f" ({round(1 / plan.num_gpus)} per GPU)" if plan.num_gpus else ""
        line = (
            f"ray: {plan.actors} actor(s) on {plan.device}{per}, {plan.num_cpus:g} CPU(s) each, "
            f"{rows} file(s) per shard, staging {run.path}"
        )
        log.info("%s", line)
        if announce is not None:
            announce(line)
        tables = [
            pa.table(
                {
                    "sha": pa.array(todo[i : i + rows], pa.string()),
                    "path": pa.array(
                        [os.fsencode(by_sha[s].path) for s in todo[i : i + rows]], pa.binary()
                    ),
                }
            )
            for i in range(0, len(todo), rows)
        ]
        _quiet_ray_data()
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        with contextlib.suppress(AttributeError):
            ctx.print_on_execution_start = False
        ds = ray.data.from_arrow(tables).map_batches(
            EmbedActor,
            batch_size=rows,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=plan.actors),
            num_cpus=plan.num_cpus,
            num_gpus=plan.num_gpus or None,
            fn_constructor_kwargs=dict(
                spec=adapter.spec,
                device=plan.device,
                precision=precision,
                model_key=adapter.model_key,
                render=render,
                staging=str(run.path),
                batch_size=batch_size,
                workers=max(workers, int(plan.num_cpus)),
                threads=int(plan.num_cpus) if plan.device == "cpu" else 0,
            ),
        )
        last_finished = False
        work.start = time.perf_counter()
        it_batches = iter(ds.iter_batches(batch_size=None, batch_format="numpy"))
        while True:
            if cancel is not None and cancel.is_set():
                yield work.cancelled()
                return
            try:
                out = next(it_batches)
            except StopIteration:
                break
            except Exception as exc:  # noqa: BLE001 - Ray wraps worker errors
                raise _worker_error(exc) from None
            shas: list[str] = []
            errors: list[tuple[Path, str]] = []
            for shard, keys_json, fails in zip(
                out["shard"], out["keys"], out["failures"], strict=True
            ):
                keys = json.loads(str(keys_json))
                if shard:
                    path = Path(str(shard))
                    if not path.exists():
                        raise RayEngineError(
                            f"a worker wrote {path}, which this machine cannot see: give a "
                            "--staging folder on a filesystem every node shares"
                        )
                    got = store.adopt_shard(path)
                    if got != len(keys):
                        log.warning(
                            "shard %s: %d vectors indexed, %d expected", path, got, len(keys)
                        )
                    work.embedded += len(keys)
                    shas.extend(keys)
                    if retried:  # a success clears the failure recorded before
                        done_retry = retried.intersection(keys)
                        if done_retry:
                            store.clear_failures(done_retry)
                            retried -= done_retry
                for sha, reason in json.loads(str(fails)):
                    work.failed += 1
                    for p in same_content.get(sha, []):
                        store.put_failure(sha, reason, p)
                        errors.append((p, reason))
                        log.info("%s: %s", p, reason)
            vecs = store.get(shas)[0] if shas else None
            last_finished = work.left <= 0
            yield work.after_batch(shas, vecs, errors, finished=last_finished)
        if not last_finished:  # every call returned, whatever the counts say
            yield work.finished()
    finally:
        if it_batches is not None:
            with contextlib.suppress(Exception):
                it_batches.close()  # type: ignore[union-attr]
        if run is not None:
            run.close(remove=True)
        if started:
            with contextlib.suppress(Exception):
                ray.shutdown()
