"""UMAP in a separate process (used by :func:`galaxy_explorer.core.jobs.projection_job`).

``import umap`` and numba's compilation hold the GIL for long stretches (measured: 0.7 s
stalls of the GUI thread when UMAP ran on a thread). A child process keeps the caller's
threads and event loop smooth and can be killed at once; the result travels through the
core's UMAP cache file.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def _child(emb_path: str, cache_dir: str, config_json: str) -> None:
    import json

    from galaxy_explorer.core.projection import UMAPConfig, cached_umap

    try:  # be the background work that it is
        os.nice(10)
    except (AttributeError, OSError):
        pass
    emb = np.load(emb_path, allow_pickle=False)
    cached_umap(emb, UMAPConfig(**json.loads(config_json)), cache_dir)


def _child_env() -> dict[str, str]:
    """The environment with this package importable (also when run from a source tree)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    return env


def umap_steps(
    emb: np.ndarray, cache_dir: Path, config: dict | None = None, poll: float = 0.1
) -> Iterator[np.ndarray | None]:
    """UMAP of ``emb`` via the core cache; computed in a child process on a cache miss.

    Yields None every ``poll`` seconds while the child runs, then the (N, 2) coordinates.
    Closing the generator early kills the child. Raises RuntimeError if the child fails.
    """
    import json
    import subprocess
    import sys
    from dataclasses import asdict

    from galaxy_explorer.core.projection import UMAPConfig, cached_umap, load_cached_umap

    cfg = UMAPConfig(**(config or {}))
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    hit = load_cached_umap(emb, cfg, cache_dir)
    if hit is not None:
        yield hit
        return
    if getattr(sys, "frozen", False):  # no separate interpreter in a frozen app
        yield cached_umap(emb, cfg, cache_dir)
        return
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".umap-in-", suffix=".npy", dir=cache_dir)
    os.close(fd)
    try:
        np.save(tmp, emb, allow_pickle=False)
        t0 = time.perf_counter()
        # a fresh interpreter (not multiprocessing): it must not re-import the caller's script
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from galaxy_explorer.core._umap_child import _child; _child(*sys.argv[1:])",
                tmp,
                str(cache_dir),
                json.dumps(asdict(cfg)),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=_child_env(),
            start_new_session=os.name == "posix",
        )  # Ctrl+C is the GUI's
        try:
            while True:
                try:
                    _, err = proc.communicate(timeout=poll)
                    break
                except subprocess.TimeoutExpired:
                    yield None
        finally:
            if proc.poll() is None:  # closed early (cancelled): stop the child now
                proc.kill()
                proc.communicate()
        if proc.returncode != 0:
            tail = err.decode(errors="replace").strip().splitlines()[-1:] if err else []
            log.error(
                "UMAP process failed (%s): %s",
                proc.returncode,
                err.decode(errors="replace") if err else "",
            )
            raise RuntimeError("the UMAP process failed" + (f": {tail[0]}" if tail else ""))
        log.info("UMAP of %d points in %.1fs (child process)", len(emb), time.perf_counter() - t0)
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
