"""``query`` and ``similar`` through the approximate index (threshold forced low)."""

from __future__ import annotations

import pytest

pytest.importorskip("faiss")


@pytest.mark.parametrize(
    "args",
    [("query", "spiral galaxy", "--top", "2"), ("similar", "img_002.jpg", "--top", "1")],
)
def test_cli_ranking_with_index_matches_brute_force(run, cutouts, tmp_path, monkeypatch, args):
    cmd, arg, *rest = args
    if cmd == "similar":
        arg = str(cutouts / arg)
    monkeypatch.setenv("GALAXY_EXPLORER_ANN_MIN_ROWS", "1000000000")
    code, brute, _ = run(cmd, str(cutouts), arg, *rest)
    assert code == 0
    assert not (tmp_path / "cache" / "ann").exists()
    monkeypatch.setenv("GALAXY_EXPLORER_ANN_MIN_ROWS", "2")
    code, approx, _ = run(cmd, str(cutouts), arg, *rest)
    assert code == 0
    assert list((tmp_path / "cache" / "ann").glob("*.ann"))  # built and cached
    assert approx == brute  # same rows, same (exact) scores
    code, again, _ = run(cmd, str(cutouts), arg, *rest)  # loaded from the cache
    assert code == 0 and again == brute
