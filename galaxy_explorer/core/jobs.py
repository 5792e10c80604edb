"""Long-running work as generators that yield progress once per batch.

The command line and the GUI drive the same generators: the CLI draws a progress bar, the
GUI wraps the generator in a worker thread. Cancellation happens between batches, either
by setting a ``threading.Event`` or by closing the generator.

Embedding overlaps decoding with compute: a thread pool reads and preprocesses the next
images (FITS/JPEG decode, stretch, resize, normalise: numpy, astropy, Pillow and torch all
release the GIL for their heavy parts) while the model embeds the current batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from galaxy_explorer.core.imaging import ImageLoadError, RenderSettings, load_rgb

if TYPE_CHECKING:  # pragma: no cover
    from galaxy_explorer.core.cache import EmbeddingStore
    from galaxy_explorer.core.catalog import Item
    from galaxy_explorer.core.model import ClipAdapter

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """Raised inside a worker when its job was cancelled."""


@dataclass
class Progress:
    """Where an embedding job stands after one batch.

    ``done`` counts unique images handled (cached + embedded + failed) out of ``total``;
    ``shas`` / ``vectors`` are the batch just embedded (for views that stream results in);
    ``errors`` are the files that failed in this batch, with the reason.
    """

    done: int
    total: int
    embedded: int = 0
    cached: int = 0
    failed: int = 0
    rate: float = 0.0
    eta: float | None = None
    shas: list[str] = field(default_factory=list)
    vectors: np.ndarray | None = None
    errors: list[tuple[Path, str]] = field(default_factory=list)
    finished: bool = False
    cancelled: bool = False
    not_cached: int = 0  # images a read-only cache lacks (not embedded)

    def summary(self) -> str:
        state = "cancelled" if self.cancelled else "done"
        return (
            f"{state}: {self.embedded} embedded, {self.cached} cached, {self.failed} failed "
            f"({self.total} images)"
        )


def _load_one(adapter: ClipAdapter, path: Path, render: RenderSettings) -> Any:
    """Decode and preprocess one image; returns a tensor or an error string."""
    try:
        rgb = load_rgb(path, render)
        return adapter.preprocess_one(rgb)
    except ImageLoadError as exc:
        return exc.reason if hasattr(exc, "reason") else str(exc)
    except Exception as exc:  # noqa: BLE001 - one bad file never stops a run
        log.exception("unexpected error reading %s", path)
        return f"unexpected error: {type(exc).__name__}: {exc}"


@dataclass
class EmbedPlan:
    """What an embedding run has to do, and its running counts.

    Shared by :func:`embed_job` and the Ray engine, so both deduplicate by content, skip
    known failures and report progress the same way. Build it with :func:`plan_embedding`;
    the engine adds to ``embedded`` / ``failed`` as batches finish.
    """

    by_sha: dict[str, Item]
    same_content: dict[str, list[Path]]
    todo: list[str]
    skipped: list[str]
    known_failures: dict[str, str]
    readonly: bool
    cached: int
    failed: int
    embedded: int = 0
    start: float = field(default_factory=time.perf_counter)

    @property
    def total(self) -> int:
        """Unique images (by content) in the run."""
        return len(self.by_sha)

    @property
    def left(self) -> int:
        """Unique images not yet cached, embedded or failed."""
        return self.total - (self.cached + self.embedded + self.failed)

    @property
    def nothing_to_do(self) -> bool:
        """True when every image is cached or failed before, or the cache is read-only."""
        return not self.todo or self.readonly

    def report(self, sha: str, reason: str) -> list[tuple[Path, str]]:
        """Name every file with that content, not only the first one."""
        return [(p, reason) for p in self.same_content[sha]]

    def opening(self) -> Progress:
        """The first progress: what is cached and what failed before."""
        if self.readonly and self.todo:
            log.warning(
                "the cache is read-only: %d image(s) it lacks are not embedded", len(self.todo)
            )
        return Progress(
            done=self.cached + self.failed,
            total=self.total,
            cached=self.cached,
            failed=self.failed,
            errors=[e for s in self.skipped for e in self.report(s, self.known_failures[s])],
            finished=self.nothing_to_do,
            not_cached=len(self.todo) if self.readonly else 0,
        )

    def _counts(self) -> dict[str, int]:
        return dict(
            done=self.cached + self.embedded + self.failed,
            total=self.total,
            embedded=self.embedded,
            cached=self.cached,
            failed=self.failed,
        )

    def cancelled(self) -> Progress:
        """The last progress of a cancelled run."""
        return Progress(**self._counts(), finished=True, cancelled=True)

    def finished(self) -> Progress:
        """A closing progress with the counts so far."""
        return Progress(**self._counts(), finished=True)

    def after_batch(
        self,
        shas: list[str],
        vectors: np.ndarray | None,
        errors: list[tuple[Path, str]],
        *,
        finished: bool,
    ) -> Progress:
        """The progress after a batch: counts, rate and time left since ``start``."""
        elapsed = time.perf_counter() - self.start
        rate = (self.embedded + self.failed - len(self.skipped)) / elapsed if elapsed > 0 else 0.0
        left = self.left
        return Progress(
            **self._counts(),
            rate=float(rate),
            eta=(left / rate) if rate else None,
            shas=shas,
            vectors=vectors,
            errors=errors,
            finished=finished,
        )


def plan_embedding(
    items: Sequence[Item], store: EmbeddingStore, *, retry_failed: bool
) -> EmbedPlan:
    """Group ``items`` by content and find what ``store`` lacks.

    Parameters
    ----------
    items : sequence of Item
    store : EmbeddingStore
    retry_failed : bool
        Embed again the images that failed before (otherwise they are skipped and
        reported with their recorded reason).

    Returns
    -------
    EmbedPlan
        Its clock starts now.
    """
    by_sha: dict[str, Item] = {}
    same_content: dict[str, list[Path]] = {}
    for it in items:
        by_sha.setdefault(it.sha256, it)
        same_content.setdefault(it.sha256, []).append(it.path)
    todo = store.missing(list(by_sha))
    known_failures = {} if retry_failed else store.failures()
    skipped = [s for s in todo if s in known_failures]
    todo = [s for s in todo if s not in known_failures]
    return EmbedPlan(
        by_sha=by_sha,
        same_content=same_content,
        todo=todo,
        skipped=skipped,
        known_failures=known_failures,
        readonly=bool(getattr(store, "readonly", False)),
        cached=len(by_sha) - len(todo) - len(skipped),
        failed=len(skipped),
    )


def embed_job(
    items: Sequence[Item],
    adapter: ClipAdapter,
    store: EmbeddingStore,
    render: RenderSettings | None = None,
    *,
    batch_size: int = 32,
    workers: int = 2,
    cancel: threading.Event | None = None,
    retry_failed: bool = False,
) -> Iterator[Progress]:
    """Embed every item the store lacks, yielding :class:`Progress` once per batch.

    Items are deduplicated by content hash; files that failed before (same content) are
    skipped unless ``retry_failed``. Each batch is written to the store before its progress
    is yielded, so a crash loses at most the batch in flight.

    Parameters
    ----------
    items : sequence of Item
    adapter : ClipAdapter
    store : EmbeddingStore
        Must belong to ``adapter.model_key`` and ``render.key()``.
    render : RenderSettings
    batch_size : int
    workers : int
        Decoding threads.
    cancel : threading.Event, optional
        Set it to stop after the batch in flight.
    """
    if batch_size < 1:
        raise ValueError("batch size must be at least 1")
    render = render or RenderSettings()
    plan = plan_embedding(items, store, retry_failed=retry_failed)
    yield plan.opening()
    if plan.nothing_to_do:
        return
    by_sha, same_content, todo = plan.by_sha, plan.same_content, plan.todo

    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="ge-decode")
    pending: deque[tuple[str, Future[Any]]] = deque()
    queue = iter(todo)
    ahead = batch_size * 2 + workers

    def fill() -> None:
        while len(pending) < ahead:
            sha = next(queue, None)
            if sha is None:
                return
            pending.append((sha, pool.submit(_load_one, adapter, by_sha[sha].path, render)))

    try:
        fill()
        while pending:
            if cancel is not None and cancel.is_set():
                yield plan.cancelled()
                return
            batch_shas: list[str] = []
            batch_failed = 0
            tensors = []
            errors: list[tuple[Path, str]] = []
            while pending and len(batch_shas) + batch_failed < batch_size:
                sha, fut = pending.popleft()
                res = fut.result()
                if isinstance(res, str):
                    errors.extend(plan.report(sha, res))
                    batch_failed += 1
                    for path in same_content[sha]:
                        store.put_failure(sha, res, path)
                else:
                    batch_shas.append(sha)
                    tensors.append(res)
                fill()  # keep the decoders busy while the model runs
            vecs = None
            if tensors:
                import torch

                vecs = adapter.embed_pixels(torch.stack(tensors))
                store.put(batch_shas, vecs)
            plan.embedded += len(batch_shas)
            plan.failed += batch_failed
            for path, reason in errors:
                log.info("%s: %s", path, reason)
            yield plan.after_batch(batch_shas, vecs, errors, finished=not pending)
    finally:
        for _, fut in pending:
            fut.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def run_to_end(job: Iterator[Progress]) -> Progress:
    """Drive a job without reporting; return its last progress."""
    last = None
    for prog in job:
        last = prog
    if last is None:  # pragma: no cover - every job yields at least once
        raise RuntimeError("job yielded nothing")
    return last


# ------------------------------------------------------------------ projection
@dataclass
class ProjectionProgress:
    """Where a projection job stands.

    ``stage`` is ``"pca"`` (instant first view in ``coords``), ``"umap"`` (running; ``coords``
    is None until it finishes) or ``"done"``. While UMAP runs, ``placed`` of ``total``
    points have coordinates (0 during the fit; large sets are fitted on a subsample and
    the rest placed in chunks).
    """

    stage: str
    elapsed: float = 0.0
    coords: np.ndarray | None = None
    finished: bool = False
    cancelled: bool = False
    error: str | None = None
    placed: int = 0
    total: int = 0


def projection_job(
    embeddings: np.ndarray,
    config: Any = None,
    cache_dir: Path | None = None,
    *,
    cancel: threading.Event | None = None,
    poll: float = 0.1,
) -> Iterator[ProjectionProgress]:
    """PCA at once, then UMAP in the session's UMAP worker process, yielding while it runs.

    UMAP (numba) holds the GIL for long stretches, so it runs in one long-lived child
    process (:mod:`galaxy_explorer.core._umap_child`), shared by every call in this
    process: numba compiles once per session, and the caller's threads (a GUI's event loop)
    stay responsive. Large sets are fitted on a subsample (``config.fit_rows``) and the
    rest placed in chunks, with ``placed`` / ``total`` progress. Cancelling stops between
    chunks (the worker stays) or, during the fit, kills the worker at once. A cached map
    (same embeddings and settings) is returned without any process.
    """
    import tempfile
    from dataclasses import asdict

    from galaxy_explorer.core._umap_child import umap_steps
    from galaxy_explorer.core.projection import UMAPConfig, pca_2d

    config = config or UMAPConfig()
    start = time.perf_counter()
    emb = np.ascontiguousarray(embeddings, dtype=np.float32)
    yield ProjectionProgress(
        "pca", coords=pca_2d(emb) if len(emb) else np.zeros((0, 2), np.float32)
    )
    if len(emb) == 0:
        yield ProjectionProgress("done", coords=np.zeros((0, 2), np.float32), finished=True)
        return
    n = len(emb)
    where = {"placed": 0}

    def progress(placed: int, total: int) -> None:
        where["placed"] = placed

    with tempfile.TemporaryDirectory(prefix="ge-umap-") as tmp:
        steps = umap_steps(
            emb,
            Path(cache_dir) if cache_dir is not None else Path(tmp),
            asdict(config),
            poll=poll,
            progress=progress,
        )
        try:
            for out in steps:
                if out is not None:
                    yield ProjectionProgress(
                        "done", time.perf_counter() - start, out, True, placed=n, total=n
                    )
                    return
                if cancel is not None and cancel.is_set():
                    steps.close()  # cancels the request (kills the worker during a fit)
                    yield ProjectionProgress(
                        "umap",
                        time.perf_counter() - start,
                        finished=True,
                        cancelled=True,
                        placed=where["placed"],
                        total=n,
                    )
                    return
                yield ProjectionProgress(
                    "umap", time.perf_counter() - start, placed=where["placed"], total=n
                )
        except RuntimeError as exc:
            yield ProjectionProgress(
                "done", time.perf_counter() - start, finished=True, error=str(exc)
            )
        finally:
            steps.close()
