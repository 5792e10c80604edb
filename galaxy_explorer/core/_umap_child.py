"""UMAP in one long-lived worker process (behind :func:`galaxy_explorer.core.jobs.projection_job`).

``import umap`` and numba's compilation hold the GIL for long stretches (measured: 0.7 s
stalls of the GUI thread when UMAP ran on a thread), and a fresh process pays ~10 s of
compiling on its first map. So one child process per application session runs every UMAP
request, one at a time: the caller's threads and event loop stay smooth, and numba
compiles once. The result travels through the core's UMAP cache file.

Protocol: one JSON object per line. The parent sends ``{"id", "emb", "cache_dir",
"config"}`` (``emb``: a ``.npy`` of float32 vectors, memory-mapped by the child) or
``{"cancel": id}``; the child answers ``{"id", "done", "total"}`` as points get
coordinates, then ``{"id", "ok": true}``, ``{"id", "cancelled": true}`` or
``{"id", "error": "..."}``. A cancel is honoured between placement chunks; during the fit
(which cannot stop midway) the parent kills the child, and the next request starts a
fresh one. The child exits when its stdin closes (the parent went away).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

log = logging.getLogger(__name__)

#: seconds the parent waits for a cancel to be acknowledged before killing the worker
CANCEL_GRACE = 3.0
#: Environment variable: "0" turns the worker's warm-up off.
ENV_WARM = "GALAXY_EXPLORER_UMAP_WARM"
#: Points of the warm-up's second fit: above umap's 4096-point limit for exact
#: neighbours, so pynndescent's index is compiled (or loaded from numba's disk
#: cache) as for a large map, whose fit then starts at once.
WARM_POINTS = 4200


# --------------------------------------------------------------------------- child side
class _Lines:
    """Lines from a raw file descriptor, with a non-blocking poll (for cancel requests)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = b""
        self.eof = False

    def _fill(self, block: bool) -> None:
        import select

        if not block and not select.select([self.fd], [], [], 0)[0]:
            return
        chunk = os.read(self.fd, 1 << 16)
        if not chunk:
            self.eof = True
        self.buf += chunk

    def pending(self) -> bool:
        """Whether a whole line (a request) is waiting, without blocking."""
        if b"\n" not in self.buf and not self.eof:
            self._fill(block=False)
        return b"\n" in self.buf or self.eof

    def next(self, block: bool) -> str | None:
        while b"\n" not in self.buf:
            if self.eof:
                return None
            before = len(self.buf)
            self._fill(block)
            if not block and len(self.buf) == before:
                return None
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()


def warm_up(
    pending: Callable[[], bool] = lambda: False, large: bool = True
) -> list[tuple[str, float]]:
    """Compile (or load from disk) what a map needs, in stages, while nothing waits.

    Stages: ``import umap`` (+ :func:`enable_disk_cache`); a fit of 300 points (exact
    neighbours: what every map uses); a fit of :data:`WARM_POINTS` points and a placement
    of 50 (pynndescent's nearest-neighbour descent, faiss and the placement: what a large,
    subsampled map uses; umap's ``transform`` and pynndescent's query are not used by
    maps any more, so they are not compiled).
    ``pending()`` is asked before each stage; when a request waits, the warm-up stops
    there, so a request waits at most for the stage under way. ``large=False`` (a
    catalogue too small for pynndescent) stops after the small fit, so a small map never
    waits for the long last stage.

    Returns
    -------
    list of (str, float)
        The stages done and their seconds.
    """
    import warnings

    done: list[tuple[str, float]] = []

    def stage(name: str, fn: Callable[[], object]) -> bool:
        if pending():
            return False
        t0 = time.perf_counter()
        fn()
        done.append((name, time.perf_counter() - t0))
        return True

    def imports() -> None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*Tensorflow.*")
            import umap  # noqa: F401 - slow: numba
        from galaxy_explorer.core._arrays import limit_blas_threads
        from galaxy_explorer.core.projection import enable_disk_cache

        enable_disk_cache()
        limit_blas_threads()  # scipy's BLAS is loaded now (see serve)

    def fit(n: int, place: int = 0) -> None:
        import umap

        from galaxy_explorer.core.projection import UMAPConfig, _placer

        rng = np.random.default_rng(0)
        x = rng.standard_normal((n, 16)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = umap.UMAP(
                n_components=2, metric="cosine", random_state=0, n_jobs=1, low_memory=True
            )
            fitted = r.fit_transform(x).astype(np.float32)
            if place:  # faiss's import and the placement's numba functions
                _placer(r, x, fitted, UMAPConfig(metric="cosine"))(x[:place] + 0.01, 0)

    if stage("import", imports) and stage("small fit", lambda: fit(300)) and large:
        stage("large fit + placement", lambda: fit(WARM_POINTS, 50))
    return done


def serve() -> None:
    """The worker's main loop: answer requests from stdin until it closes.

    While no request waits after the start, :func:`warm_up` compiles what maps need.
    """
    from galaxy_explorer.core._arrays import limit_blas_threads
    from galaxy_explorer.core.projection import UMAPCancelled, UMAPConfig, cached_umap

    try:  # be the background work that it is
        os.nice(10)
    except (AttributeError, OSError):
        pass
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints of libraries go to stderr, not into the protocol
    lines = _Lines(0)

    def send(msg: dict[str, Any]) -> None:
        out.write(json.dumps(msg) + "\n")

    warm = os.environ.get(ENV_WARM, "1")
    if warm != "0":
        try:
            stages = warm_up(lines.pending, large=warm != "small")
            send({"warm": [[name, round(sec, 2)] for name, sec in stages]})
        except Exception as exc:  # noqa: BLE001 - a failed warm-up only costs time later
            log.warning("UMAP warm-up failed: %s", exc)

    while True:
        line = lines.next(block=True)
        if line is None:
            return
        if not line.strip():
            continue
        req = json.loads(line)
        if "cancel" in req:
            continue  # for a request that already ended
        rid = req["id"]
        stop = False

        def cancelled(rid: int = rid) -> bool:
            nonlocal stop
            while not stop:
                msg = lines.next(block=False)
                if msg is None:
                    return lines.eof
                if msg.strip() and json.loads(msg).get("cancel") == rid:
                    stop = True
            return stop

        def progress(done: int, total: int, rid: int = rid) -> None:
            send({"id": rid, "done": int(done), "total": int(total)})

        # BLAS threads (numpy's and scipy's, loaded with umap) limited for every request:
        # two spinning OpenBLAS threads made a 1k map's spectral start and PCA 5x slower
        # whenever anything else ran (#12)
        limit_blas_threads()
        try:
            emb = np.load(req["emb"], mmap_mode="r", allow_pickle=False)
            cached_umap(
                emb,
                UMAPConfig(**req["config"]),
                req["cache_dir"],
                progress=progress,
                cancelled=cancelled,
            )
            del emb
            send({"id": rid, "ok": True})
        except UMAPCancelled:
            send({"id": rid, "cancelled": True})
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises
            log.exception("UMAP request failed")
            send({"id": rid, "error": f"{type(exc).__name__}: {exc}"})


def _child(emb_path: str, cache_dir: str, config_json: str) -> None:
    """One-shot form (kept for scripts): compute and cache one map, then exit."""
    from galaxy_explorer.core.projection import UMAPConfig, cached_umap

    emb = np.load(emb_path, mmap_mode="r", allow_pickle=False)
    cached_umap(emb, UMAPConfig(**json.loads(config_json)), cache_dir)


def _child_env(large: bool = True) -> dict[str, str]:
    """The environment with this package importable (also when run from a source tree).

    ``large=False`` limits the warm-up to what small maps need (unless it is switched off).
    """
    env = dict(os.environ)
    # every BLAS the worker loads (numpy's, scipy's) starts with one thread less than the
    # CPUs (limit_blas_threads() applies it again per request); OpenMP (faiss) is left alone
    blas = str(max(1, (os.cpu_count() or 2) - 1))
    for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, blas)
    if not large and env.get(ENV_WARM, "1") != "0":
        env[ENV_WARM] = "small"
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    return env


# -------------------------------------------------------------------------- parent side
class UMAPWorker:
    """The long-lived UMAP process of this application session (started on first use).

    One request runs at a time (a lock); requests of several threads queue up.
    """

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._next_id = 0
        self.started = 0  # how many processes this worker has started (reuse shows as 1)
        #: the warm-up stages the running process reported, [(name, seconds)], or None
        self.warm: list[tuple[str, float]] | None = None

    @property
    def pid(self) -> int | None:
        """Process id of the running worker, or None."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def prestart(self, large: bool = True) -> None:
        """Start the process now, so it warms up (compiles) before the first request.

        Call it when a map is likely soon (e.g. when a catalogue opens). Cheap when the
        process already runs; the warm-up runs at low priority and gives way to requests.
        """
        if not self._lock.acquire(blocking=False):
            return  # a request is running: the process is up
        try:
            self._start(large=large)
        finally:
            self._lock.release()

    def _start(self, large: bool = True) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self.warm = None
        self._stderr = tempfile.TemporaryFile()
        lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        # a fresh interpreter (not multiprocessing): it must not re-import the caller's script
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from galaxy_explorer.core._umap_child import serve; serve()",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=_child_env(large),
            start_new_session=os.name == "posix",  # Ctrl+C is the caller's
        )
        threading.Thread(
            target=self._read, args=(proc, lines, self), name="ge-umap-reader", daemon=True
        ).start()
        self._proc, self._lines = proc, lines
        self.started += 1
        return proc

    @staticmethod
    def _read(
        proc: subprocess.Popen[bytes],
        lines: queue.Queue[dict[str, Any] | None],
        owner: UMAPWorker,
    ) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            if isinstance(msg, dict) and "warm" in msg:
                if owner._proc is proc:
                    owner.warm = [(str(n), float(t)) for n, t in msg["warm"]]
                continue
            lines.put(msg)
        lines.put(None)  # the process ended

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.seek(0)
            text = self._stderr.read().decode(errors="replace").strip().splitlines()
        except (OSError, ValueError):
            return ""
        return text[-1] if text else ""

    def stop(self) -> None:
        """Kill the worker now (the next request starts a fresh one)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc is not None:
            for f in (proc.stdin, proc.stdout):
                try:
                    if f is not None:
                        f.close()
                except OSError:
                    pass

    def _send(self, proc: subprocess.Popen[bytes], msg: dict[str, Any]) -> bool:
        try:
            assert proc.stdin is not None
            proc.stdin.write((json.dumps(msg) + "\n").encode())
            proc.stdin.flush()
            return True
        except (OSError, ValueError):
            return False

    def run(
        self,
        emb_path: str,
        cache_dir: str,
        config: dict[str, Any],
        poll: float = 0.1,
        progress: Callable[[int, int], None] | None = None,
    ) -> Iterator[None]:
        """Run one request; yields every ``poll`` seconds until it is done.

        Closing the generator early cancels the request: between transform chunks the
        worker stops and stays alive; during the fit it is killed.

        Raises
        ------
        RuntimeError
            The request failed, or the worker died.
        """
        with self._lock:
            proc = self._start()
            self._next_id += 1
            rid = self._next_id
            stage_fit = True
            finished = False
            if not self._send(
                proc, {"id": rid, "emb": emb_path, "cache_dir": cache_dir, "config": config}
            ):
                self.stop()
                raise RuntimeError("the UMAP process failed: " + self._stderr_tail())
            try:
                last_yield = time.monotonic()
                while True:
                    try:
                        msg = self._lines.get(timeout=poll)
                    except queue.Empty:
                        last_yield = time.monotonic()
                        yield None
                        continue
                    if msg is None:
                        tail = self._stderr_tail()
                        self.stop()
                        finished = True
                        raise RuntimeError(
                            "the UMAP process failed" + (f": {tail}" if tail else "")
                        )
                    if msg.get("id") != rid:
                        continue  # a late answer to an earlier, abandoned request
                    if "done" in msg:
                        stage_fit = False
                        if progress is not None:
                            progress(int(msg["done"]), int(msg["total"]))
                        # yield every poll seconds even while progress keeps coming (small
                        # chunks): the caller's cancel is looked at only when it gets control
                        if time.monotonic() - last_yield >= poll:
                            last_yield = time.monotonic()
                            yield None
                        continue
                    finished = True
                    if msg.get("error"):
                        raise RuntimeError(f"UMAP failed: {msg['error']}")
                    return
            finally:
                if not finished:  # cancelled by closing the generator
                    self._cancel(proc, rid, stage_fit)

    def _cancel(self, proc: subprocess.Popen[bytes], rid: int, in_fit: bool) -> None:
        if in_fit or not self._send(proc, {"cancel": rid}):
            self.stop()
            return
        deadline = time.monotonic() + CANCEL_GRACE
        while time.monotonic() < deadline:
            try:
                msg = self._lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if msg is None:
                self.stop()
                return
            if msg.get("id") == rid and "done" not in msg:
                return  # acknowledged: the worker is free again
        self.stop()


_WORKER: UMAPWorker | None = None
_WORKER_LOCK = threading.Lock()


def worker() -> UMAPWorker:
    """This process's UMAP worker (one per application session)."""
    global _WORKER
    with _WORKER_LOCK:
        if _WORKER is None:
            _WORKER = UMAPWorker()
            atexit.register(_WORKER.stop)
        return _WORKER


def prestart(large: bool = True) -> None:
    """Start this process's UMAP worker now, so it warms up before the first map.

    ``large=False``: the maps to come are small (exact neighbours), so the warm-up skips
    pynndescent's long compile.
    """
    if getattr(sys, "frozen", False):
        return
    worker().prestart(large=large)


def umap_steps(
    emb: np.ndarray,
    cache_dir: Path,
    config: dict | None = None,
    poll: float = 0.1,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[np.ndarray | None]:
    """UMAP of ``emb`` via the core cache; computed by the UMAP worker on a cache miss.

    Yields None every ``poll`` seconds while the worker runs, then the (N, 2) coordinates.
    ``progress(placed, total)`` reports points placed so far. Closing the generator early
    cancels the request. Raises RuntimeError if the worker fails.
    """
    from dataclasses import asdict

    from galaxy_explorer.core.projection import UMAPConfig, cached_umap, load_cached_umap

    cfg = UMAPConfig(**(config or {}))
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    hit = load_cached_umap(emb, cfg, cache_dir)
    if hit is not None:
        yield hit
        return
    if getattr(sys, "frozen", False):  # no separate interpreter in a frozen app
        yield cached_umap(emb, cfg, cache_dir, progress=progress)
        return
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".umap-in-", suffix=".npy", dir=cache_dir)
    os.close(fd)
    try:
        np.save(tmp, emb, allow_pickle=False)
        t0 = time.perf_counter()
        steps = worker().run(tmp, str(cache_dir), asdict(cfg), poll=poll, progress=progress)
        try:
            yield from steps
        finally:
            steps.close()
        log.info("UMAP of %d points in %.1fs (worker process)", len(emb), time.perf_counter() - t0)
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    coords = load_cached_umap(emb, cfg, cache_dir)
    if coords is None:
        raise RuntimeError("the UMAP process wrote no result")
    yield coords


def umap_coords(
    emb: np.ndarray,
    cache_dir: Path,
    config: dict | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> np.ndarray | None:
    """Blocking form of :func:`umap_steps`: the coordinates, or None when ``cancelled()``."""
    steps = umap_steps(emb, cache_dir, config)
    try:
        for out in steps:
            if out is not None:
                return out
            if cancelled():
                return None
    finally:
        steps.close()
    return None
