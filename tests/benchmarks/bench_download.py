"""Download throughput of ``core.hub.download_job`` against the fake hub (run on demand).

    pytest tests/benchmarks/bench_download.py -m benchmark -s
    python tests/benchmarks/bench_download.py

The fake hub runs in a separate process on 127.0.0.1 and serves a 200 MB weights file. The
baseline, measured in the same run, is a plain ``urllib`` read of the same file into a
file without checks; the job adds progress, cancellation points and the sha256 check.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

SIZE = 200_000_000
ROOT = Path(__file__).resolve().parents[2]

_SERVER = f"""
import os, sys, time, tempfile
from pathlib import Path
sys.path.insert(0, {str(ROOT / "tests")!r})
from hub_server import start_fake_hub
srv = start_fake_hub()
d = Path(tempfile.mkdtemp())
(d / "config.json").write_text('{{"model_type": "clip"}}')
srv.add_folder("bench/big", d, extra={{"model.safetensors": os.urandom({SIZE})}})
print(srv.url, flush=True)
time.sleep(3600)
"""


def run() -> dict[str, float]:
    from galaxy_explorer.core import hub

    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        url = proc.stdout.readline().strip()
        os.environ["HF_ENDPOINT"] = url
        os.environ.pop("HF_HUB_OFFLINE", None)
        with tempfile.TemporaryDirectory() as tmp:
            plan = hub.plan_download("bench/big", cache_dir=Path(tmp) / "hf")
            t0 = time.perf_counter()
            with (
                urllib.request.urlopen(
                    f"{url}/bench/big/resolve/{plan.commit}/model.safetensors"
                ) as resp,
                open(Path(tmp) / "plain", "wb") as out,
            ):
                while chunk := resp.read1(1 << 20):
                    out.write(chunk)
            plain = time.perf_counter() - t0
            t0 = time.perf_counter()
            steps = list(hub.download_job(plan))
            job = time.perf_counter() - t0
            assert steps[-1].finished
    finally:
        proc.kill()
        proc.wait()
    return {
        "plain_MBps": SIZE / plain / 1e6,
        "job_MBps": SIZE / job / 1e6,
        "job_over_plain_time": job / plain,
        "progress_values": float(len(steps)),
    }


@pytest.mark.benchmark
def test_download_throughput():
    r = run()
    print("\n" + "  ".join(f"{k} {v:.2f}" for k, v in r.items()))


if __name__ == "__main__":
    r = run()
    print("  ".join(f"{k} {v:.2f}" for k, v in r.items()))
