"""Export cost per table format, and a SAMP send, at 100,000 rows (run on demand).

    pytest tests/benchmarks/bench_tables.py -m benchmark -s

Each format (ECSV, VOTable, FITS, Parquet) is timed writing the same rows with three
zero-shot labels and reported as a ratio to the CSV writer, the baseline, measured in the
same run (best of three). Then the rows are sent as a VOTable to a TOPCAT-like astropy client
on a private hub (write + ``table.load.votable`` + the client reading it back + reply).
"""

from __future__ import annotations

import os
import time

import pytest
from samp_fixtures import samp_env, samp_hub, topcat  # noqa: F401

from galaxy_explorer.core.export import ExportRow, Provenance
from galaxy_explorer.core.tables import votable_bytes, write_table

N = 100_000
LABELS = ["spiral", "elliptical", "barred, grand design"]


def _rows(n: int) -> list[ExportRow]:
    return [
        ExportRow(
            path=f"/data/survey/field_{i // 1000:03d}/galaxy_{i:07d}.fits",
            name=f"galaxy_{i:07d}.fits",
            sha256=f"{i:064x}",
            ra=(i * 0.01) % 360,
            dec=((i * 0.007) % 180) - 90,
            score=i / n,
            predicted_label=LABELS[i % 3],
            probs={lab: (i + k) % 7 / 7 for k, lab in enumerate(LABELS)},
            label=None if i % 5 else LABELS[i % 3],
        )
        for i in range(n)
    ]


def _best(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


@pytest.mark.benchmark
@pytest.mark.timeout(900)
def test_table_formats(tmp_path):
    rows = _rows(N)
    prov = Provenance(model="bench", labels=LABELS)
    base = _best(lambda: write_table(tmp_path / "t.csv", rows, prov, LABELS))
    print(f"\n{N} rows, 3 labels; csv (baseline): {base:.2f} s")
    for ext in ("ecsv", "vot", "fits", "parquet"):
        out = tmp_path / f"t.{ext}"
        t = _best(lambda out=out: write_table(out, rows, prov, LABELS))
        size = os.path.getsize(out) / 1e6
        print(f"  {ext:8s} {t:6.2f} s  ({t / base:4.1f}x csv)  {size:6.1f} MB")


@pytest.mark.benchmark
@pytest.mark.timeout(900)
def test_samp_send(topcat):
    from galaxy_explorer.core.samp import SampLink

    prov = Provenance(model="bench", labels=LABELS)
    link = SampLink()
    link.connect()
    try:
        for n in (1_000, N):
            rows = _rows(n)
            t0 = time.perf_counter()
            data = votable_bytes(rows, prov, LABELS)
            t1 = time.perf_counter()
            _, res = link.send_table(data, keys=list(range(n)), wait=300)
            t2 = time.perf_counter()
            assert res == {"TOPCAT": "ok"} and len(topcat.tables[-1]) == n
            print(
                f"\nSAMP send {n} rows: VOTable {t1 - t0:.2f} s, "
                f"send + client reads + reply {t2 - t1:.2f} s"
            )
    finally:
        link.close()
