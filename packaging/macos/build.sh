#!/usr/bin/env bash
# Build the macOS app bundle: dist/Galaxy Explorer.app (and the one-folder
# dist/galaxy-explorer beside it). NOT TESTED: written without a Mac to run it on.
#
#   packaging/macos/build.sh
#
# Environment: PYTHON (default python3, 3.10+; a python.org or Homebrew build for the
# machine's architecture), BUILD_VENV (default build/venv-macos).
# The app is not signed or notarised: on first start macOS asks to confirm it
# (right-click > Open). For distribution, sign it with `codesign --deep --options runtime`
# and notarise it with `xcrun notarytool`, then wrap it in a .dmg (e.g. `hdiutil create`).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
PYTHON=${PYTHON:-python3}
BUILD_VENV=${BUILD_VENV:-$ROOT/build/venv-macos}
start=$(date +%s)
[ -x "$BUILD_VENV/bin/python" ] || "$PYTHON" -m venv "$BUILD_VENV"
PY=$BUILD_VENV/bin/python
"$PY" -m pip install --quiet --upgrade pip
# the default torch wheel on macOS is the CPU + MPS build
"$PY" -m pip install --quiet torch "pyinstaller>=6.10" "pyinstaller-hooks-contrib>=2024.8"
"$PY" -m pip install --quiet "$ROOT"
# run outside the source tree, so that PyInstaller takes the installed package
mkdir -p "$ROOT/build"
cd "$ROOT/build"
GALAXY_EXPLORER_VERSION=$("$PY" -c "import galaxy_explorer; print(galaxy_explorer.__version__)") \
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
    --workpath "$ROOT/build/pyinstaller-macos" --distpath "$ROOT/dist" \
    "$ROOT/packaging/galaxy-explorer.spec"
cd "$ROOT"
echo "app: $ROOT/dist/Galaxy Explorer.app ($(du -sh "$ROOT/dist/Galaxy Explorer.app" | cut -f1))"
echo "time: $(( $(date +%s) - start )) s"
# quick check, as packaging/linux/smoke.sh does on Linux
"$ROOT/dist/Galaxy Explorer.app/Contents/MacOS/galaxy-explorer" --version
