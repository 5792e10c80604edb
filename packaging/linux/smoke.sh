#!/usr/bin/env bash
# Smoke test of the built Linux bundle, headless, with no Python on PATH and a clean
# environment: --version, a query on the bundled sample, then the window
# (QT_QPA_PLATFORM=offscreen) on the sample until its UMAP map is ready or WINDOW_SECONDS
# pass, then Ctrl+C. Fails on a non-zero exit, a missing result, or an error in the log.
#
#   packaging/linux/smoke.sh [BUNDLE_FOLDER]      (default: dist/galaxy-explorer)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUNDLE=$(cd "${1:-dist/galaxy-explorer}" && pwd)
EXE=$BUNDLE/galaxy-explorer
WINDOW_SECONDS=${WINDOW_SECONDS:-180}
SAMPLE=$BUNDLE/_internal/galaxy_explorer/resources/sample
[ -x "$EXE" ] || { echo "FAIL: no bundle at $EXE (run packaging/linux/build.sh)"; exit 1; }
[ -d "$SAMPLE/images" ] || { echo "FAIL: the bundle has no sample catalogue"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin" "$tmp/home"
# nothing but the bundle: an empty PATH folder (no python), a fresh HOME, no PYTHON* vars
CLEAN_ENV=(env -i PATH="$tmp/bin" HOME="$tmp/home" LANG=C.UTF-8 QT_QPA_PLATFORM=offscreen
           HF_HUB_OFFLINE=1 GALAXY_EXPLORER_LOG="$tmp/gui.log")
run() { "${CLEAN_ENV[@]}" "$@"; }
if run /bin/sh -c 'command -v python3 || command -v python'; then
    echo "FAIL: python is on the smoke test's PATH"; exit 1
fi

t0=$(date +%s)
version=$(run "$EXE" --version)
echo "version: $version"
[[ $version == galaxy-explorer\ * ]] || { echo "FAIL: --version printed '$version'"; exit 1; }

run "$EXE" query "$SAMPLE" "a barred spiral galaxy" --top 5 --cache "$tmp/qcache" \
    >"$tmp/query.out" 2>"$tmp/query.err" || { cat "$tmp/query.err"; echo "FAIL: query"; exit 1; }
cat "$tmp/query.out"
rows=$(grep -cE '^ *[0-9]+ +[0-9.-]+ +synth_' "$tmp/query.out" || true)
[ "$rows" -eq 5 ] || { cat "$tmp/query.err"; echo "FAIL: query printed $rows result rows, not 5"; exit 1; }
grep -q "resources/model on cpu" "$tmp/query.err" || { cat "$tmp/query.err"; echo "FAIL: not the bundled model"; exit 1; }
grep -q " 0 failed" "$tmp/query.err" || { cat "$tmp/query.err"; echo "FAIL: images failed"; exit 1; }
echo "query: ok ($(( $(date +%s) - t0 )) s since start)"

# the window on the sample (no arguments), its own cache
t1=$(date +%s)
# env execs the app, so $! is the app's own process id
"${CLEAN_ENV[@]}" GALAXY_EXPLORER_CACHE="$tmp/wcache" XDG_CONFIG_HOME="$tmp/config" "$EXE" \
    >"$tmp/window.out" 2>&1 &
pid=$!
umap=no
for _ in $(seq "$WINDOW_SECONDS"); do
    sleep 1
    kill -0 "$pid" 2>/dev/null || break
    if compgen -G "$tmp/wcache/projections/umap-*.npy" >/dev/null; then umap=yes; break; fi
done
if kill -0 "$pid" 2>/dev/null; then
    kill -INT "$pid"  # the app closes its window cleanly on Ctrl+C
    for _ in $(seq 90); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid"; tail -20 "$tmp/window.out"
        echo "FAIL: the window did not close within 90 s of Ctrl+C"; exit 1
    fi
    wait "$pid" && rc=0 || rc=$?
else
    wait "$pid" && rc=0 || rc=$?
    echo "FAIL: the app exited by itself (status $rc)"; cat "$tmp/window.out"; cat "$tmp/gui.log" 2>/dev/null; exit 1
fi
[ "$rc" -eq 0 ] || { tail -20 "$tmp/window.out"; echo "FAIL: window exit status $rc after Ctrl+C"; exit 1; }
grep -q "window shown" "$tmp/gui.log" || { cat "$tmp/window.out"; echo "FAIL: the window never showed"; exit 1; }
if grep -E " (ERROR|CRITICAL) " "$tmp/gui.log"; then echo "FAIL: errors in the app's log"; exit 1; fi
embedded=$(run "$EXE" embed "$SAMPLE" --cache "$tmp/wcache" -q 2>&1 | grep -o '[0-9]* cached' || true)
echo "window: ran $(( $(date +%s) - t1 )) s, UMAP map done: $umap, sample in its cache: $embedded"

# the bundle's own menu entry: Exec= runs this bundle
run XDG_DATA_HOME="$tmp/xdg" "$EXE" --install-desktop 2>/dev/null || { echo "FAIL: --install-desktop"; exit 1; }
grep -qF "Exec=$EXE gui %F" "$tmp/xdg/applications/galaxy-explorer.desktop" \
    || { echo "FAIL: the menu entry does not run $EXE"; exit 1; }
[ -f "$tmp/xdg/icons/hicolor/256x256/apps/galaxy-explorer.png" ] || { echo "FAIL: no icon installed"; exit 1; }
echo "menu entry: ok"
echo "smoke test passed"
