"""Writers of huge-but-cheap images for the bounded-decoding tests and benchmark.

Everything is streamed and mostly one value, and a repeated block of pixels is deflated
only once (a full flush makes its compressed bytes independent of what came before), so
a 9400 x 9400 PNG, a 3 x 6000 x 6000 ``.fits.gz`` cube or a 576 MB gzip payload is written
in well under a second with a few megabytes of memory.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

_BLOCK = 1 << 22  # 4 MiB


class _Deflater:
    """Raw deflate with a cache of full-flushed blocks: the same block, deflated after a
    full flush, always gives the same bytes."""

    def __init__(self, level: int = 6) -> None:
        self._c = zlib.compressobj(level, zlib.DEFLATED, -15)
        self._cache: dict[bytes, bytes] = {}
        self.crc = 0
        self.adler = 1
        self.size = 0

    def block(self, data: bytes) -> bytes:
        self.crc = zlib.crc32(data, self.crc)
        self.adler = zlib.adler32(data, self.adler)
        self.size += len(data)
        out = self._cache.get(data)
        if out is None:
            out = self._c.compress(data) + self._c.flush(zlib.Z_FULL_FLUSH)
            self._cache[data] = out
        return out

    def finish(self) -> bytes:
        return self._c.flush(zlib.Z_FINISH)


def _blocks(parts: Iterable[tuple[bytes, int]]) -> Iterable[bytes]:
    """``(data, repeat)`` parts as a stream of blocks of at most ``_BLOCK`` bytes, so that
    long repeats reuse one cached deflated block."""
    for data, repeat in parts:
        if len(data) >= _BLOCK or repeat == 1:
            for _ in range(repeat):
                yield data
            continue
        per = max(1, _BLOCK // len(data))
        full, rest = divmod(repeat, per)
        if full:
            chunk = data * per
            for _ in range(full):
                yield chunk
        if rest:
            yield data * rest


def write_gzip(path: Path, parts: Iterable[tuple[bytes, int]]) -> Path:
    """Write a gzip file whose content is each ``data`` repeated ``repeat`` times."""
    path = Path(path)
    d = _Deflater(6)
    with open(path, "wb") as f:
        f.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")
        for blk in _blocks(parts):
            f.write(d.block(blk))
        f.write(d.finish())
        f.write(struct.pack("<II", d.crc & 0xFFFFFFFF, d.size & 0xFFFFFFFF))
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def write_big_png(path: Path, width: int, height: int) -> Path:
    """An 8-bit RGB PNG, black with a bright orange square over the middle quarter of each
    side (rows 3/8 to 5/8, columns 3/8 to 5/8)."""
    path = Path(path)
    row_bg = b"\x00" + bytes(3 * width)
    y0, y1 = height * 3 // 8, height * 5 // 8
    x0, x1 = width * 3 // 8, width * 5 // 8
    fg = bytearray(row_bg)
    fg[1 + 3 * x0 : 1 + 3 * x1] = b"\xff\xc0\x80" * (x1 - x0)
    parts = [(row_bg, y0), (bytes(fg), y1 - y0), (row_bg, height - y1)]
    d = _Deflater(6)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(_png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)))
        f.write(_png_chunk(b"IDAT", b"\x78\x9c"))  # zlib header; IDAT chunks concatenate
        for blk in _blocks(parts):
            f.write(_png_chunk(b"IDAT", d.block(blk)))
        f.write(_png_chunk(b"IDAT", d.finish() + struct.pack(">I", d.adler & 0xFFFFFFFF)))
        f.write(_png_chunk(b"IEND", b""))
    return path


def fits_header(cards: list[tuple[str, object]]) -> bytes:
    """The bytes of a FITS header (padded to 2880) with these cards."""
    from astropy.io import fits

    return fits.Header(cards).tostring().encode("ascii")


def galaxy_plane(n: int) -> np.ndarray:
    """An ``n`` x ``n`` big-endian float32 plane: background 1 and a bright blob in a
    central box of side ``n // 8`` (exactly 1 outside it, so it compresses well)."""
    out = np.ones((n, n), ">f4")
    m = max(2, n // 8)
    y = np.arange(m, dtype=np.float32)[:, None] - m / 2
    x = np.arange(m, dtype=np.float32)[None, :] - m / 2
    blob = 1.0 + 1000.0 * np.exp(-(x * x + y * y) / np.float32(2 * (m / 6) ** 2))
    s = (n - m) // 2
    out[s : s + m, s : s + m] = blob
    return out


def write_gzip_cube(path: Path, n: int, n_planes: int = 3) -> Path:
    """A valid ``.fits.gz`` float32 cube of ``n_planes`` x ``n`` x ``n`` (a blob in each)."""
    hdr = fits_header(
        [("SIMPLE", True), ("BITPIX", -32), ("NAXIS", 3), ("NAXIS1", n), ("NAXIS2", n),
         ("NAXIS3", n_planes)]
    )  # fmt: skip
    plane = galaxy_plane(n).tobytes()
    pad = (-len(plane) * n_planes) % 2880
    rows = [plane[i : i + _BLOCK] for i in range(0, len(plane), _BLOCK)]
    parts = [(hdr, 1)] + [(r, 1) for _ in range(n_planes) for r in rows] + [(bytes(pad), 1)]
    return write_gzip(path, parts)


def write_gzip_zeros_empty_header(path: Path, n_bytes: int = 576 * 2**20) -> Path:
    """``.fits.gz``: a primary header with no data axes (NAXIS = 0), then ``n_bytes`` of
    zeros where the next header should be."""
    hdr = fits_header([("SIMPLE", True), ("BITPIX", 8), ("NAXIS", 0)])
    return write_gzip(path, [(hdr, 1), (bytes(2880), n_bytes // 2880)])


def write_gzip_zeros_only(path: Path, n_bytes: int = 576 * 2**20) -> Path:
    """``.fits.gz`` whose content is nothing but zero bytes (no header at all)."""
    return write_gzip(path, [(bytes(2880), n_bytes // 2880)])


def write_gzip_blank_header(path: Path, n_bytes: int = 576 * 2**20) -> Path:
    """``.fits.gz``: ``SIMPLE = T`` and then only blank cards (no END), then zeros."""
    hdr = b"SIMPLE  =                    T".ljust(2880)
    return write_gzip(path, [(hdr, 1), (bytes(2880), n_bytes // 2880)])


def write_gzip_declared_huge(path: Path, n: int = 100_000) -> Path:
    """``.fits.gz``: a valid header declaring an ``n`` x ``n`` float64 image, then 1 MB."""
    hdr = fits_header(
        [("SIMPLE", True), ("BITPIX", -64), ("NAXIS", 2), ("NAXIS1", n), ("NAXIS2", n)]
    )
    return write_gzip(path, [(hdr, 1), (bytes(2880), 364)])


# --------------------------------------------------------------- measuring in a child process
_CHILD_HEAD = r"""
import json, resource, sys, time
import numpy as np
import PIL.Image, PIL.PngImagePlugin, PIL.JpegImagePlugin
import astropy.io.fits, astropy.visualization
from galaxy_explorer.core import imaging
"""

_CHILD_CLOCK = r"""
def usage():
    # peak RSS of this process image in kB: VmHWM starts afresh at exec, whereas
    # ru_maxrss carries over the parent's peak through (v)fork + exec
    r = resource.getrusage(resource.RUSAGE_SELF)
    peak = r.ru_maxrss
    try:
        with open("/proc/self/status") as f:
            peak = next(int(x.split()[1]) for x in f if x.startswith("VmHWM:"))
    except (OSError, StopIteration):
        pass
    return peak, r.ru_utime + r.ru_stime

base, cpu0 = usage()
t0 = time.perf_counter()
"""

_CHILD_TAIL = r"""peak, cpu1 = usage()
out.update(peak_mb=(peak - base) / 1024, cpu_s=cpu1 - cpu0, wall_s=time.perf_counter() - t0)
print(json.dumps(out))
"""


def child_script(setup: str, call: str) -> str:
    """A script for ``python -c`` that measures one call in a fresh interpreter.

    It imports numpy, Pillow, astropy and :mod:`galaxy_explorer.core.imaging`, runs
    ``setup`` (more imports), takes the baseline peak RSS and CPU time, runs ``call`` (which
    sets a dict ``out``), then prints ``out`` as JSON with ``peak_mb`` (``VmHWM`` added by
    the call), ``cpu_s`` and ``wall_s``.
    """
    return _CHILD_HEAD + setup + _CHILD_CLOCK + call + _CHILD_TAIL
