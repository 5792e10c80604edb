"""Peak memory and time of ``load_rgb`` on huge images and bombs (run on demand).

    pytest tests/benchmarks/bench_decode.py -m benchmark -s
    python tests/benchmarks/bench_decode.py [--keep DIR]

Each case runs ``load_rgb`` in a fresh interpreter and reports the peak resident set
size added by the call (``VmHWM`` after minus after the imports; ``ru_maxrss`` would
inherit the parent's peak through exec), the call's wall
and CPU time, and ratios to a baseline case, a 1024 x 1024 PNG, measured in the same run.
Cases (the issue 11 measurements, plus the other huge-image paths):

- a 9400 x 9400 RGB PNG (about 280 KB on disk);
- a 3 x 6000 x 6000 float32 ``.fits.gz`` cube (valid header);
- ``.fits.gz`` bombs: a primary header with no data then 576 MB of zeros; 576 MB of
  zeros with no header; a header without END card then zeros;
- a 9400 x 9400 int16 plain FITS, and a 9400 x 9400 int16 ``.fits.fz`` (RICE_1);
- a 12000 x 7000 JPEG (JPEG draft mode).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE.parent))

from huge_images import (  # noqa: E402
    child_script,
    write_big_png,
    write_gzip_blank_header,
    write_gzip_cube,
    write_gzip_zeros_empty_header,
    write_gzip_zeros_only,
)

_CHILD = child_script(
    "",
    r"""try:
    rgb = imaging.load_rgb(sys.argv[1])
    out = {"result": "x".join(map(str, rgb.shape))}
except imaging.ImageLoadError as e:
    out = {"result": "refused: " + e.reason[:70]}
""",
)


def _measure(path: Path, timeout: float = 600) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path)],
            capture_output=True, text=True, timeout=timeout, env=env,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"result": f"timeout after {timeout} s", "peak_mb": float("nan"),
                "cpu_s": float("nan"), "wall_s": float(timeout)}  # fmt: skip
    if proc.returncode != 0:
        return {"result": f"crashed rc={proc.returncode}: {proc.stderr[-200:]}",
                "peak_mb": float("nan"), "cpu_s": float("nan"), "wall_s": float("nan")}  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _write_cases(d: Path) -> dict[str, Path]:
    from astropy.io import fits
    from PIL import Image

    cases: dict[str, Path] = {}
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (1024, 1024, 3), dtype=np.uint8)).save(d / "base.png")
    cases["baseline 1024^2 PNG"] = d / "base.png"
    cases["9400^2 RGB PNG"] = write_big_png(d / "big.png", 9400, 9400)
    cases["3x6000^2 .fits.gz cube"] = write_gzip_cube(d / "cube.fits.gz", 6000)
    cases["gz: empty header + 576 MB zeros"] = write_gzip_zeros_empty_header(d / "e.fits.gz")
    cases["gz: 576 MB zeros, no header"] = write_gzip_zeros_only(d / "z.fits.gz")
    cases["gz: header without END + zeros"] = write_gzip_blank_header(d / "b.fits.gz")
    n = 9400
    data = np.ones((n, n), np.int16)
    data[n // 2 - 500 : n // 2 + 500, n // 2 - 500 : n // 2 + 500] = 1000
    fits.PrimaryHDU(data).writeto(d / "plain.fits")
    cases["9400^2 int16 plain FITS"] = d / "plain.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data, compression_type="RICE_1")]).writeto(
        d / "tiles.fits.fz"
    )
    cases["9400^2 int16 .fits.fz"] = d / "tiles.fits.fz"
    del data
    y = np.linspace(0, 20, 7000, dtype=np.float32)[:, None]
    x = np.linspace(0, 30, 12000, dtype=np.float32)[None, :]
    g = ((np.sin(x) + np.cos(y)) * 60 + 128).astype(np.uint8)
    Image.fromarray(g).convert("RGB").save(d / "big.jpg", quality=85)
    del g
    cases["12000x7000 JPEG"] = d / "big.jpg"
    return cases


def run(keep: Path | None = None) -> list[tuple[str, dict]]:
    with tempfile.TemporaryDirectory() as tmp:
        d = keep or Path(tmp)
        d.mkdir(parents=True, exist_ok=True)
        cases = _write_cases(d)
        rows = [(name, _measure(p)) for name, p in cases.items()]
    base = rows[0][1]
    print(f"\n{'case':34} {'result':44} {'peak MB':>8} {'x base':>7} {'wall s':>7}"
          f" {'cpu s':>6} {'x base':>7}")  # fmt: skip
    for name, r in rows:
        print(
            f"{name:34} {r['result'][:44]:44} {r['peak_mb']:8.0f}"
            f" {r['peak_mb'] / max(base['peak_mb'], 1):7.1f} {r['wall_s']:7.2f} {r['cpu_s']:6.2f}"
            f" {r['cpu_s'] / max(base['cpu_s'], 1e-3):7.1f}"
        )
    return rows


@pytest.mark.benchmark
def test_bench_decode():
    rows = dict(run())
    for name, r in rows.items():
        assert not r["result"].startswith(("timeout", "crashed")), (name, r)


if __name__ == "__main__":
    keep = Path(sys.argv[sys.argv.index("--keep") + 1]) if "--keep" in sys.argv else None
    run(keep)
