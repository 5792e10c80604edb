"""What ``pip`` and the sdist get: built here offline (setuptools directly, no isolation)
from a copy of the source tree, then read back."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest itself needs tomli on 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
# Absolute paths of a build machine: home folders, this project's build host's work
# folders, an installed package's folder. Written so that this file does not match itself.
BUILD_PATH = re.compile(rb"/(?:work|root|home|Users)/|site-package[s]|[A-Za-z]:\\Users\\")
SKIP_COPY = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    "*.pyc",
    ".pytest_cache",
    ".ruff_cache",
    ".mypy_cache",
)


def _build(kind: str, src: Path, dist: Path) -> tuple[Path, str]:
    code = f"import sys, setuptools.build_meta as b; print('BUILT', b.build_{kind}(sys.argv[1]))"
    proc = subprocess.run(
        [sys.executable, "-W", "default", "-c", code, str(dist)],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    name = next(ln.split()[1] for ln in proc.stdout.splitlines() if ln.startswith("BUILT "))
    return dist / name, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(sdist, wheel, build output): the sdist from a copy of this source tree, the wheel
    from the unpacked sdist (as pip builds it), offline and without build isolation."""
    tmp = tmp_path_factory.mktemp("build")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=SKIP_COPY, symlinks=True)
    sdist, out1 = _build("sdist", src, tmp / "dist")
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp / "unpacked", filter="data")
    (unpacked,) = (tmp / "unpacked").iterdir()
    wheel, out2 = _build("wheel", unpacked, tmp / "dist")
    return sdist, wheel, out1 + out2


def _sdist_files(sdist: Path) -> dict[str, bytes]:
    with tarfile.open(sdist) as tar:
        top = tar.getnames()[0].split("/")[0]
        return {
            m.name[len(top) + 1 :]: tar.extractfile(m).read()
            for m in tar.getmembers()
            if m.isfile()
        }


def _wheel_files(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as zf:
        return {n: zf.read(n) for n in zf.namelist() if not n.endswith("/")}


def _repo_files(folder: str) -> set[str]:
    base = ROOT / folder
    return {
        p.relative_to(ROOT).as_posix()
        for p in base.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }


@pytest.mark.slow
def test_build_has_no_setuptools_warnings(built):
    _, _, output = built
    assert "would be ignored" not in output
    assert not re.search(r"^\s*!!\s*$", output, re.M), output[-3000:]  # setuptools' warning banner
    assert "SetuptoolsDeprecationWarning" not in output


@pytest.mark.slow
def test_sdist_carries_the_whole_test_suite_and_packaging(built):
    files = _sdist_files(built[0])
    for folder in ("tests", "packaging", "resources", "galaxy_explorer"):
        missing = _repo_files(folder) - set(files)
        assert not missing, f"not in the sdist: {sorted(missing)[:10]}"
    assert {"pyproject.toml", "README.md", "MANIFEST.in"} <= set(files)
    assert not [n for n in files if "__pycache__" in n or n.endswith(".pyc")]


@pytest.mark.slow
def test_wheel_holds_package_resources_and_desktop_files(built):
    files = _wheel_files(built[1])
    assert "galaxy_explorer/py.typed" in files
    res = "galaxy_explorer/resources/"
    for rel in _repo_files("resources"):
        assert res + rel[len("resources/") :] in files, rel
    desktop = files[res + "desktop/galaxy-explorer.desktop"].decode()
    assert "Icon=galaxy-explorer" in desktop
    assert not [n for n in files if n.startswith("tests/")]
    meta = next(v for n, v in files.items() if n.endswith(".dist-info/METADATA")).decode()
    assert re.search(r"^Requires-Dist: huggingface[-_]hub>=", meta, re.M | re.I)


@pytest.mark.slow
def test_no_build_machine_paths_in_shipped_files(built):
    """Every file in the wheel and the sdist, text or binary, is free of absolute build paths."""
    offenders = []
    for kind, files in (("sdist", _sdist_files(built[0])), ("wheel", _wheel_files(built[1]))):
        for name, data in files.items():
            m = BUILD_PATH.search(data)
            if m:
                start = max(0, m.start() - 60)
                offenders.append(f"{kind}:{name}: …{data[start : m.end() + 60]!r}")
    assert not offenders, "\n".join(offenders)


def test_build_path_pattern_catches_what_it_should():
    slash = b"/"  # the examples are assembled so that this file does not hold them
    venv = slash + b"work/main/.venv/lib/python3.11/site-" + b"packages/x"
    for bad in (
        b'"_name_or_path": "' + venv + b'"',
        slash + b"home/alice/galaxies",
        slash + b"root/.cache/x",
        b"C:\\Users\\bob\\x",
        slash + b"Users/carol/x",
    ):
        assert BUILD_PATH.search(bad), bad
    for ok in (b"~/.local/share/applications", b"$XDG_DATA_HOME/icons", b"/tmp/x", b"/usr/bin"):
        assert not BUILD_PATH.search(ok), ok


def _declared() -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]


def test_dependencies_declare_huggingface_hub_and_tested_floors():
    from packaging.requirements import Requirement

    reqs = {Requirement(r).name.lower().replace("_", "-"): Requirement(r) for r in _declared()}
    assert "huggingface-hub" in reqs  # imported by core.model, so declared
    # the floors packaging/check_min_versions.sh found: older releases cannot load the models
    assert not reqs["transformers"].specifier.contains("4.55.4")
    assert not reqs["transformers"].specifier.contains("4.40.2")


def test_installed_versions_meet_declared_floors():
    from packaging.requirements import Requirement

    for text in _declared():
        req = Requirement(text)
        try:
            installed = version(req.name)
        except PackageNotFoundError:
            pytest.fail(f"{req.name} is declared but not installed")
        ok = req.specifier.contains(installed, prereleases=True)
        assert ok, f"{req.name} {installed} does not meet {req}"


def test_shipped_model_config_has_no_local_paths():
    """The bundled model's config (the file that carried a build path) is clean."""
    text = (ROOT / "resources" / "model" / "config.json").read_bytes()
    assert not BUILD_PATH.search(text)
    assert b"_name_or_path" not in text


def test_sdist_listing_is_readable(built):
    """The sdist opens as a tar.gz with one top folder named after the project and version."""
    with tarfile.open(built[0]) as tar:
        tops = {n.split("/")[0] for n in tar.getnames()}
    from galaxy_explorer import __version__

    assert tops == {f"galaxy_explorer-{__version__}"}
