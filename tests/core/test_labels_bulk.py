"""A large label change costs no Python call per item (issue #12: 100k items took 12.8 s)."""

from __future__ import annotations

import sys

from galaxy_explorer.core.labels import LabelStore


class _PyCalls:
    """Counts Python function calls (a per-item helper or generator costs one per item)."""

    def __init__(self) -> None:
        self.n = 0

    def __enter__(self) -> _PyCalls:
        sys.setprofile(self._profile)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.setprofile(None)

    def _profile(self, frame: object, event: str, arg: object) -> None:
        if event == "call":
            self.n += 1


def test_labelling_100k_items_makes_no_python_call_per_item(tmp_path):
    n = 100_000
    shas = [f"{i:064x}" for i in range(n)]
    store = LabelStore(tmp_path / "labels.sqlite")
    with _PyCalls() as calls:
        assert store.set(shas, "spiral")
    assert calls.n < 2000, calls.n
    with _PyCalls() as calls:
        assert store.set(shas[::-1], "elliptical")  # a relabel, in any order
    assert calls.n < 2000, calls.n
    assert store.counts() == {"elliptical": n}
    with _PyCalls() as calls:
        assert store.undo()
    assert calls.n < 2000, calls.n
    assert store.counts() == {"spiral": n}
    store.set(shas[:10], None)
    assert store.counts() == {"spiral": n - 10}
    store.close()
    # saved, in one transaction each, and one undo step each
    again = LabelStore(tmp_path / "labels.sqlite")
    assert again.counts() == {"spiral": n - 10} and again.get(shas[10]) == "spiral"
    assert again.get(shas[0]) is None
    again.close()


def test_a_bulk_relabel_keeps_known_paths_and_undoes_in_one_step(tmp_path):
    store = LabelStore(tmp_path / "labels.sqlite")
    shas = [f"{i:064x}" for i in range(6000)]
    store.set(shas[:3], "a", paths=[b"/x/\xff1.png", "/x/2.png", None])
    assert store.set(shas, "b")
    assert store.path_of(shas[0]) is not None and bytes(store._entries[shas[0]].path) == (
        b"/x/\xff1.png"
    )
    assert store.path_of(shas[2]) is None and store.counts() == {"b": 6000}
    assert store.undo_size == 6000 and store.redo_size == 0
    assert store.undo() and store.counts() == {"a": 3}
    assert store.redo_size == 6000
    assert store.path_of(shas[1]).name == "2.png"
    store.close()
