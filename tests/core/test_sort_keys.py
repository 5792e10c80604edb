"""Sort keys of the gallery's label and catalogue-column orders (core, no Qt)."""

from __future__ import annotations

import sys
import threading
import time

import astropy.units as u
import numpy as np
import pytest
from astropy.table import MaskedColumn, Table

from galaxy_explorer.core.catalogue import Catalogue, read_table
from galaxy_explorer.core.sort_keys import (
    catalogue_sort_key,
    item_sort_key,
    manual_codes,
    text_ranks,
)


def _order(key: np.ndarray) -> list[int]:
    return np.argsort(key, kind="stable").tolist()


def test_numbers_with_units_sort_by_value_and_missing_values_last(tmp_path):
    t = Table()
    t["z"] = MaskedColumn([0.3, 0.01, 0.2, 0.0, 5.0], mask=[0, 0, 1, 0, 0])
    t["dist"] = MaskedColumn([10.0, 2.0, 30.0, 1.0, 200.0], unit=u.Mpc)
    # read back from ECSV: the unit survives, the column is still a number
    t.write(tmp_path / "cat.ecsv")
    cat = Catalogue(read_table(tmp_path / "cat.ecsv"), "cat.ecsv")
    assert str(cat.table["dist"].unit) == "Mpc"
    assert _order(catalogue_sort_key(cat, "dist")) == [3, 1, 0, 2, 4]  # 1 < 2 < 10 < 30 < 200
    z = catalogue_sort_key(cat, "z")
    assert np.isnan(z[2])  # a masked cell has no value
    assert _order(z) == [3, 1, 0, 4, 2]  # missing last


def test_text_numbers_with_units_sort_numerically_in_one_unit():
    t = Table()
    t["size"] = ["12 kpc", "900 pc", "", "1.5 kpc", "3e3 pc"]  # 12000, 900, -, 1500, 3000 pc
    t["speed"] = ["10 km/s", "9 km/s", "100 km/s", "", "-5 km/s"]
    t["mixed"] = ["12 kpc", "3 s", "1 kpc", "", "2 kpc"]  # length and time: text, not numbers
    cat = Catalogue(t, "t")
    size = catalogue_sort_key(cat, "size")
    assert _order(size) == [1, 3, 4, 0, 2]
    assert size[0] == pytest.approx(12.0) and size[1] == pytest.approx(0.9)  # in kpc
    assert _order(catalogue_sort_key(cat, "speed")) == [4, 1, 0, 2, 3]  # not "10" < "9"
    assert _order(catalogue_sort_key(cat, "mixed")) == [2, 0, 4, 1, 3]  # as text


def test_text_sorts_case_insensitively_with_equal_ranks_for_equal_text():
    ranks = text_ranks(["beta", "Alpha", "", "alpha", "Gamma", "ALPHA"])
    assert np.isnan(ranks[2])
    assert ranks[1] == ranks[3] == ranks[5] == 0  # one rank: a stable sort keeps their order
    assert ranks[0] == 1 and ranks[4] == 2
    assert text_ranks([]).shape == (0,)
    assert np.isnan(text_ranks(["", ""])).all()


def test_booleans_and_bytes_and_item_keys():
    t = Table()
    t["flag"] = ["True", "False", "", "true"]
    t["id"] = np.array([b"b2", b"a1", b"", b"A0"])
    cat = Catalogue(t, "t")
    flag = catalogue_sort_key(cat, "flag")
    assert flag[[0, 1, 3]].tolist() == [1.0, 0.0, 1.0] and np.isnan(flag[2])
    assert _order(catalogue_sort_key(cat, "id")) == [3, 1, 0, 2]
    # per cutout through a match: no catalogue row (-1) has no value; descending keeps
    # missing values last
    key = item_sort_key(cat, "id", np.array([0, -1, 3, 1, 2, 7]))
    assert _order(key) == [2, 3, 0, 1, 4, 5]
    desc = item_sort_key(cat, "id", np.array([0, -1, 3, 1, 2]), descending=True)
    assert _order(desc) == [0, 3, 2, 1, 4]


def test_the_key_is_kept_in_the_catalogue_cache():
    t = Table()
    t["name"] = ["b", "a"]
    cat = Catalogue(t, "t")
    first = catalogue_sort_key(cat, "name")
    assert catalogue_sort_key(cat, "name") is first


def test_manual_codes_follow_the_label_order():
    manual = ["spiral", None, "ring", "merger", "spiral", None]
    codes = manual_codes(manual, ["ring", "spiral"], chunk=2)
    assert codes.tolist() == [1, -1, 0, -1, 1, -1]
    assert manual_codes([], ["a"]).tolist() == []
    assert manual_codes(["a"], []).tolist() == [-1]


def test_a_million_text_values_rank_without_holding_the_gil_for_long():
    """Ranking a 1M-row text column on a worker leaves the GUI thread free: no single
    numpy call over a million Python strings (those held the GIL for 0.4-5 s)."""
    rng = np.random.default_rng(0)
    values = [f"NGC{v}" for v in rng.integers(0, 10**7, 1_000_000).tolist()]
    gaps: list[float] = []
    stop = threading.Event()

    def tick() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            time.sleep(0.002)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    old = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    th = threading.Thread(target=tick)
    th.start()
    try:
        ranks = text_ranks(values)
    finally:
        stop.set()
        th.join()
        sys.setswitchinterval(old)
    ref = np.unique(np.array(values), return_inverse=True)[1]
    assert np.array_equal(ranks.astype(np.int64), ref)
    # a loaded 2-core machine adds its own delays: the bound is far below what one
    # whole-array conversion held the GIL for (0.4 s), not a timing target
    assert max(gaps) < 0.3, max(gaps)
