#!/usr/bin/env bash
# Reproduce the trial behind the version floors in pyproject.toml (on demand, not in CI:
# it downloads each transformers release it tries).
#
#   packaging/check_min_versions.sh                 # the declared floors
#   packaging/check_min_versions.sh 4.56.2 4.57.0   # transformers versions to try
#
# For each transformers version it makes one trial venv (reused), installs that version
# with the newest huggingface_hub it allows, runs packaging/check_min_versions.py (bundled
# model + tiny CLIPs through ClipAdapter, embeddings compared with the reference), then
# again with huggingface_hub at the lowest version that transformers release accepts.
# The reference embeddings come from the project's own environment ($REF_PYTHON, default
# .venv/bin/python). Environment: TORCH_SPEC (default torch==2.13.0), TRIAL_DIR
# (default /tmp/galaxy-explorer-minver).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TRIAL_DIR=${TRIAL_DIR:-/tmp/galaxy-explorer-minver}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
REF_PYTHON=${REF_PYTHON:-$ROOT/.venv/bin/python}
export HF_HUB_OFFLINE=1 PIP_DISABLE_PIP_VERSION_CHECK=1
mkdir -p "$TRIAL_DIR"

floor() {  # floor NAME: the >= bound pyproject.toml declares for NAME
    sed -n "s/^ *\"$1>=\([0-9.]*\).*/\1/p" "$ROOT/pyproject.toml" | head -1
}
versions=("$@")
[ ${#versions[@]} -eq 0 ] && versions=("$(floor transformers)")

echo "== reference: $("$REF_PYTHON" -c 'import transformers as t; print(t.__version__)')"
PYTHONPATH=$ROOT "$REF_PYTHON" -c "import sys; sys.path.insert(0, 'tests'); from helpers import make_tiny_clip; \
make_tiny_clip(sys.argv[1])" "$TRIAL_DIR/ref_clip" 2>/dev/null || exit 1
PYTHONPATH=$ROOT "$REF_PYTHON" packaging/check_min_versions.py --clip "$TRIAL_DIR/ref_clip" \
    --write-reference "$TRIAL_DIR/ref.npz" 2>/dev/null || exit 1

VENV=$TRIAL_DIR/venv
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    # shellcheck disable=SC2086
    "$VENV/bin/pip" install --quiet $TORCH_SPEC
    # the project's other dependencies, without transformers / huggingface_hub
    "$VENV/bin/pip" install --quiet numpy safetensors tokenizers pillow astropy \
        platformdirs tqdm pytest
fi
PY=$VENV/bin/python
failed=0
for v in "${versions[@]}"; do
    echo "== transformers $v"
    # the newest huggingface_hub this transformers release accepts
    if ! "$PY" -m pip install --quiet --upgrade "transformers==$v" huggingface_hub \
            2>"$TRIAL_DIR/pip-$v.log"; then
        echo "   cannot install: $(tail -1 "$TRIAL_DIR/pip-$v.log")"; failed=1; continue
    fi
    hub_min=$("$PY" -c "from importlib.metadata import requires; import re; \
print(next(re.search(r'>=([0-9.]+)', r).group(1) for r in requires('transformers') \
if r.lower().replace('_', '-').startswith('huggingface-hub')))")
    for hub in newest "$hub_min"; do
        if [ "$hub" != newest ]; then
            "$PY" -m pip install --quiet "huggingface_hub==$hub" "transformers==$v" \
                2>>"$TRIAL_DIR/pip-$v.log" || { echo "   cannot install huggingface_hub $hub"; failed=1; continue; }
        fi
        if PYTHONPATH=$ROOT "$PY" packaging/check_min_versions.py --clip "$TRIAL_DIR/ref_clip" \
                --reference "$TRIAL_DIR/ref.npz" >"$TRIAL_DIR/check-$v-$hub.log" 2>&1; then
            echo "   PASS with huggingface_hub $("$PY" -c 'import huggingface_hub as h; print(h.__version__)')"
        else
            echo "   FAIL with huggingface_hub $hub: $(grep -v '^ ' "$TRIAL_DIR/check-$v-$hub.log" | tail -1 | cut -c1-300)"
            failed=1
        fi
    done
done
exit $failed
