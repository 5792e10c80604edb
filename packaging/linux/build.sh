#!/usr/bin/env bash
# Build the Linux desktop bundle: dist/galaxy-explorer/galaxy-explorer (one folder, no
# Python needed on the target machine). On demand, not in CI: see packaging/README.md.
#
#   packaging/linux/build.sh            # build (makes build/venv on first use)
#   TORCH_SPEC="torch==2.13.0" packaging/linux/build.sh
#
# Environment:
#   PYTHON       interpreter for the build venv (default: python3; 3.10 or newer)
#   BUILD_VENV   the build venv (default: build/venv; reused when it exists)
#   TORCH_SPEC   the torch requirement installed first (default: torch). A CPU-only torch
#                build makes a much smaller bundle than a CUDA one.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
PYTHON=${PYTHON:-python3}
BUILD_VENV=${BUILD_VENV:-$ROOT/build/venv}
TORCH_SPEC=${TORCH_SPEC:-torch}
start=$(date +%s)

if [ ! -x "$BUILD_VENV/bin/python" ]; then
    "$PYTHON" -m venv "$BUILD_VENV"
fi
PY=$BUILD_VENV/bin/python
"$PY" -m pip install --quiet --upgrade pip
# shellcheck disable=SC2086 # TORCH_SPEC may hold pip options
"$PY" -m pip install --quiet $TORCH_SPEC
"$PY" -m pip install --quiet "pyinstaller>=6.10" "pyinstaller-hooks-contrib>=2024.8"
# a real (non-editable) install, so the bundle holds what the wheel holds; the second
# step reinstalls this tree as it is now even when the version number has not changed
had_egg_info=$([ -d "$ROOT/galaxy_explorer.egg-info" ] && echo yes || echo no)
"$PY" -m pip install --quiet "$ROOT"
"$PY" -m pip install --quiet --force-reinstall --no-deps "$ROOT"
[ "$had_egg_info" = no ] && rm -rf "$ROOT/galaxy_explorer.egg-info"
deps_done=$(date +%s)

# run outside the source tree, so that PyInstaller takes the installed package
mkdir -p "$ROOT/build"
(cd "$ROOT/build" && "$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
    --workpath "$ROOT/build/pyinstaller" --distpath "$ROOT/dist" \
    "$ROOT/packaging/galaxy-explorer.spec")
end=$(date +%s)

BUNDLE=$ROOT/dist/galaxy-explorer
echo "bundle: $BUNDLE ($(du -sh "$BUNDLE" | cut -f1))"
echo "time: $((deps_done - start)) s installing, $((end - deps_done)) s PyInstaller"
