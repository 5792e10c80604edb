"""A catalogue opened with a model: what the command line and the GUI both work through.

A :class:`Session` ties together the folder scan, the model adapter (loaded lazily), the
embedding store for (model, render) and the manual labels of the catalogue, and offers the
queries as plain functions of numpy arrays.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from galaxy_explorer.core import search
from galaxy_explorer.core.cache import EmbeddingStore, default_cache_dir
from galaxy_explorer.core.catalog import Item, ScanResult, scan
from galaxy_explorer.core.defaults import default_templates
from galaxy_explorer.core.imaging import ImageLoadError, RenderSettings, load_rgb
from galaxy_explorer.core.jobs import Progress, embed_job
from galaxy_explorer.core.labels import LabelStore, default_labels_path
from galaxy_explorer.core.model import ClipAdapter

log = logging.getLogger(__name__)

#: Prompt templates averaged for zero-shot labels: the app's, from
#: ``resources/default_labels.json`` (:mod:`galaxy_explorer.core.defaults`), so that the
#: command line and the app give the same probabilities.
DEFAULT_TEMPLATES = default_templates()


def default_data_dir() -> Path:
    """Where user data (manual labels) lives: ``$GALAXY_EXPLORER_DATA`` or the platform's."""
    env = os.environ.get("GALAXY_EXPLORER_DATA")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("galaxy-explorer", appauthor=False))


class _KeptLookups:
    """A :class:`FileMemo` whose folder lookups are kept (and reused when given)."""

    def __init__(self, memo: Any, kept: dict[str, dict[bytes, tuple[int, int, int, int, str]]]):
        self.memo = memo
        self.kept = kept

    def lookup(self, prefix: Any) -> dict[bytes, tuple[int, int, int, int, str]]:
        key = os.fspath(prefix)
        if key not in self.kept:
            self.kept[key] = self.memo.lookup(prefix)
        return self.kept[key]

    def lookup_one(self, path: Any) -> tuple[int, int, int, int, str] | None:
        return self.memo.lookup_one(path)

    def record(self, entries: Any) -> None:
        self.memo.record(entries)


class Session:
    """A catalogue (one or more folders or files) explored with one model.

    Parameters
    ----------
    roots : path or sequence of paths
        Folders (scanned recursively) and/or single files.
    model : str
        Hub id, model folder, or ``auto``.
    cache_dir : Path, optional
        Embedding cache; the platform's user cache folder by default.
    device, precision : str
        See :meth:`ClipAdapter.load`.
    render : RenderSettings, optional
        How FITS files become RGB; part of the cache key.
    labels_path : Path, optional
        Manual labels file; by default one per catalogue under the user data folder.
    adapter : ClipAdapter, optional
        An already loaded model (the GUI reuses one across folders).
    text_first : bool
        Load the model's text tower only, and its image tower the first time an image is
        embedded (see :meth:`ClipAdapter.load`): a text query over a cached catalogue
        never reads the image weights.
    """

    def __init__(
        self,
        roots: Path | str | Sequence[Path | str],
        model: str = "auto",
        cache_dir: Path | str | None = None,
        device: str = "auto",
        precision: str = "auto",
        render: RenderSettings | None = None,
        labels_path: Path | str | None = None,
        adapter: ClipAdapter | None = None,
        text_first: bool = False,
    ) -> None:
        if isinstance(roots, (str, os.PathLike)):
            roots = [roots]
        self.roots = [Path(r).expanduser() for r in roots]
        self.model_spec = model
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        self.device = device
        self.precision = precision
        self.render = render or RenderSettings()
        self._labels_path = Path(labels_path) if labels_path else None
        self._adapter = adapter
        self.text_first = text_first
        self._store: EmbeddingStore | None = None
        self._labels: LabelStore | None = None
        self._lock = threading.RLock()
        self.items: list[Item] = []
        self.scan_errors: list[tuple[Path, str]] = []
        self._lookups: dict[str, dict[bytes, tuple[int, int, int, int, str]]] = {}
        self._shown: dict[str, Item] = {}
        #: (Catalogue, Match) of a user's catalogue table matched to ``items``, if any
        self.catalogue: tuple[Any, Any] | None = None

    # ------------------------------------------------------------------ parts
    def scan(self) -> ScanResult:
        """Scan the roots; raises FileNotFoundError for a root that does not exist."""
        from galaxy_explorer.core.cache import FileMemo

        memo = FileMemo(self.cache_dir)
        try:
            kept, self._lookups = self._lookups, {}
            reuse, self._shown = self._shown, {}
            result = scan(self.roots, memo=_KeptLookups(memo, kept) if kept else memo, reuse=reuse)
        finally:
            memo.close()
        self.items = result.items
        self.scan_errors = result.errors
        return result

    def remembered(self) -> list[Item] | None:
        """The items the last scan of these roots found, from the cache alone (no ``stat``).

        A provisional catalogue, shown while :meth:`scan` checks the folders (which costs a
        ``stat`` per file: seconds at 10^5 files). None when nothing is remembered or the
        memo cannot be read (then only the scan can tell).
        """
        from galaxy_explorer.core.cache import FileMemo
        from galaxy_explorer.core.catalog import remembered_items

        try:
            memo = FileMemo(self.cache_dir)
        except Exception as exc:  # a damaged or unusable cache: the scan reports it
            log.debug("no remembered listing: %s", exc)
            return None
        try:
            kept = _KeptLookups(memo, {})
            shown: dict[str, Item] = {}
            items = remembered_items(self.roots, kept, shown)
            # the scan that follows reuses the lookups, and these items where unchanged
            self._lookups, self._shown = kept.kept, shown
            return items
        except Exception as exc:
            log.debug("no remembered listing: %s", exc)
            return None
        finally:
            memo.close()

    @property
    def adapter(self) -> ClipAdapter:
        with self._lock:
            if self._adapter is None:
                self._adapter = ClipAdapter.load(
                    self.model_spec,
                    device=self.device,
                    precision=self.precision,
                    text_first=self.text_first,
                )
            return self._adapter

    @property
    def store(self) -> EmbeddingStore:
        with self._lock:
            if self._store is None:
                a = self.adapter
                self._store = EmbeddingStore(self.cache_dir, a.model_key, self.render.key(), a.dim)
            return self._store

    @property
    def labels(self) -> LabelStore:
        with self._lock:
            if self._labels is None:
                path = self._labels_path or default_labels_path(
                    self._catalog_root(), default_data_dir()
                )
                self._labels = LabelStore(path)
            return self._labels

    def _catalog_root(self) -> Path:
        r = self.roots[0] if self.roots else Path.cwd()
        return r if r.is_dir() else r.parent

    def set_render(self, render: RenderSettings) -> None:
        """Change how FITS files are rendered; embeddings of the new space are separate."""
        with self._lock:
            self.render = render
            if self._store is not None:
                self._store.close()
            self._store = None

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._labels is not None:
            self._labels.close()
            self._labels = None

    # -------------------------------------------------------------- embedding
    def embed(
        self,
        batch_size: int = 32,
        workers: int = 2,
        cancel: threading.Event | None = None,
        retry_failed: bool = False,
    ) -> Iterator[Progress]:
        """Embed what the cache lacks (scanning first if not yet scanned)."""
        if not self.items and not self.scan_errors:
            self.scan()
        return embed_job(
            self.items,
            self.adapter,
            self.store,
            self.render,
            batch_size=batch_size,
            workers=workers,
            cancel=cancel,
            retry_failed=retry_failed,
        )

    def embeddings(self) -> tuple[list[Item], np.ndarray]:
        """Items that have a vector, and their vectors (N, dim) float32, in scan order."""
        shas = [it.sha256 for it in self.items]
        vecs, found = self.store.get(shas)
        kept = [it for it, f in zip(self.items, found, strict=True) if f]
        return kept, vecs[found]

    def sky_positions(self, items: Sequence[Item]) -> list[tuple[float | None, float | None]]:
        """RA/Dec (degrees) of each item's centre, remembered in the cache by content."""
        from galaxy_explorer.core.cache import FileMemo
        from galaxy_explorer.core.imaging import sky_position

        memo = FileMemo(self.cache_dir)
        try:
            return memo.sky_positions([(it.sha256, it.path) for it in items], sky_position)
        finally:
            memo.close()

    def embed_file(self, path: Path | str, *, separate_store: bool = False) -> np.ndarray:
        """The vector of one file (from the cache, or computed and cached now).

        Parameters
        ----------
        path : path
            Any image file (inside the catalogue or not).
        separate_store : bool
            Read and write the cache through a store of its own (closed afterwards), as a
            second writer would: safe while another thread embeds into ``self.store``.

        Raises
        ------
        ImageLoadError
            If the file cannot be read.
        """
        from galaxy_explorer.core.cache import FileMemo

        memo = FileMemo(self.cache_dir)
        try:
            res = scan([Path(path)], memo=memo)
        finally:
            memo.close()
        if not res.items:
            reason = res.errors[0][1] if res.errors else "not an image file"
            raise ImageLoadError(path, reason)
        sha = res.items[0].sha256
        if separate_store:
            a = self.adapter
            store = EmbeddingStore(self.cache_dir, a.model_key, self.render.key(), a.dim)
        else:
            store = self.store
        try:
            vec, found = store.get([sha])
            if found[0]:
                return vec[0]
            v = self.adapter.embed_images([load_rgb(res.items[0].path, self.render)])
            if not store.readonly:
                store.put([sha], v)
            return v[0]
        finally:
            if separate_store:
                store.close()

    # ----------------------------------------------------------------- queries
    def text_scores(self, texts: str | Sequence[str], vectors: np.ndarray) -> np.ndarray:
        """Cosine score of each vector to a text query (several texts are averaged)."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        return search.combined_query(vectors, text_vecs=self.adapter.embed_texts(texts))

    def zero_shot(
        self, labels: Sequence[str], vectors: np.ndarray, templates: Sequence[str] | None = None
    ) -> np.ndarray:
        """Zero-shot probabilities (N, L) with the model's temperature.

        ``labels`` are the texts put into the ``templates`` (the defaults if None); the same
        computation as the app's (:mod:`galaxy_explorer.core.workflows`).
        """
        from galaxy_explorer.core import workflows

        lv = workflows.label_vectors(self.adapter, list(labels), templates)
        return workflows.zero_shot_probs(self.adapter, vectors, lv)
