"""The evaluation queries ship inside the package and load without the repository's tests."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import galaxy_explorer
from galaxy_explorer.train import eval_queries
from galaxy_explorer.train.recipe import load_fresh_queries, load_paraphrase_queries
from galaxy_explorer.train.synth import MAIN_CLASSES

PACKAGE = Path(galaxy_explorer.__file__).resolve().parent


def test_queries_name_main_classes_only():
    for queries in (eval_queries.QUERIES, eval_queries.FRESH_QUERIES):
        assert queries
        for text, classes in queries:
            assert text.strip() and classes
            assert set(classes) <= set(MAIN_CLASSES), (text, classes)
    assert list(eval_queries.PLAIN_PROMPTS) == list(MAIN_CLASSES)
    assert load_paraphrase_queries() == (
        list(eval_queries.QUERIES),
        dict(eval_queries.PLAIN_PROMPTS),
    )
    assert load_fresh_queries() == list(eval_queries.FRESH_QUERIES)


def test_queries_load_from_the_package_alone(tmp_path):
    """As from a wheel: only the package on the path, no tests/ folder, cwd elsewhere."""
    site = tmp_path / "site"
    shutil.copytree(PACKAGE, site / "galaxy_explorer", ignore=shutil.ignore_patterns("__pycache__"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]);"
        "import galaxy_explorer;"
        "from galaxy_explorer.train.recipe import load_fresh_queries, load_paraphrase_queries;"
        "q, p = load_paraphrase_queries();"
        "n = len(load_fresh_queries());"
        "print(json.dumps([galaxy_explorer.__file__, len(q), sorted(p), n]))"
    )
    # -I: isolated mode (no PYTHONPATH, no cwd or script folder on sys.path)
    res = subprocess.run(
        [sys.executable, "-I", "-c", code, str(site)],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    where, n_queries, prompts, n_fresh = json.loads(res.stdout)
    assert Path(where).resolve().is_relative_to(site.resolve())
    assert not (tmp_path / "tests").exists()
    assert n_queries == len(eval_queries.QUERIES) > 0
    assert prompts == sorted(MAIN_CLASSES)
    assert n_fresh == len(eval_queries.FRESH_QUERIES) > 0
