"""``galaxy-explorer classify`` and the app give the same probabilities for the same labels.

Both go through :mod:`galaxy_explorer.core.workflows` and read their default labels and
templates from one place (``resources/default_labels.json``).
"""

from __future__ import annotations

import numpy as np
from conftest import wait_embedded, wait_predictions  # noqa: F401  (tests/gui/conftest.py)

from galaxy_explorer.cli import main
from galaxy_explorer.core.defaults import LabelDef
from galaxy_explorer.core.export import read_csv


def _cli_probs(args, tmp_path, name):
    out = tmp_path / f"{name}.csv"
    code = main(["classify", *args, "--csv", str(out), "-q"])
    assert code == 0
    _, rows = read_csv(out)
    return {r["path"]: r for r in rows}


def _app_probs(win):
    c = win.c
    names = c.label_names()
    return {
        str(it.path): [float(c.probs[r, j]) for j in range(len(names))]
        for r, it in enumerate(c.items)
    }


def test_classify_and_app_agree(qtbot, make_window, cutouts, tiny_model, gui_env, tmp_path):
    common = [str(cutouts), "--model", str(tiny_model), "--cache", str(gui_env.cache)]
    # 1. the defaults: classify without --labels / --templates = the app as it opens
    cli = _cli_probs(common, tmp_path, "defaults")
    win = make_window([cutouts])
    wait_embedded(qtbot, win)
    wait_predictions(qtbot, win)
    names = win.c.label_names()
    app = _app_probs(win)
    assert set(cli) == set(app) and len(app) == 8
    for path, probs in app.items():
        row = cli[path]
        np.testing.assert_allclose(
            [float(row[f"p_{n}"]) for n in names], probs, rtol=1e-4, atol=1e-5
        )
    # and with a threshold, the same "uncertain" rows
    thr = float(np.median(np.nanmax(win.c.probs, axis=1)))
    cli = _cli_probs([*common, "--threshold", f"{thr}"], tmp_path, "thr")
    win.c.set_threshold(thr)
    for r, it in enumerate(win.c.items):
        assert cli[str(it.path)]["predicted_label"] == win.c.predicted_label(r)

    # 2. the same labels and templates given explicitly
    labels, templates = ["ring galaxy", "blob", "spiral arms"], ["{}", "an image of {}"]
    cli = _cli_probs(
        [*common, "--labels", ",".join(labels), "--templates", "|".join(templates)],
        tmp_path,
        "explicit",
    )
    with qtbot.waitSignal(win.c.predictions_changed, timeout=10000):
        win.c.set_label_defs([LabelDef(n) for n in labels], templates)
    qtbot.waitUntil(lambda: win.c.probs is not None and win.c.probs.shape == (8, 3), timeout=10000)
    app = _app_probs(win)
    for path, probs in app.items():
        np.testing.assert_allclose(
            [float(cli[path][f"p_{n}"]) for n in labels], probs, rtol=1e-4, atol=1e-5
        )
