"""Bounded decoding for :mod:`galaxy_explorer.core.imaging`: refuse early, reduce while reading.

Three tools keep the memory of one :func:`~galaxy_explorer.core.imaging.load_rgb` call
bounded and refuse decompression bombs before they cost time:

- :func:`check_gzip_fits` walks the HDU headers of a ``.fits.gz`` in the decompressed
  stream, 2880 bytes at a time, before astropy sees the file. A header that is not FITS
  (zeros, blanks, no ``END`` card, non-ASCII bytes) is refused at once, and so is a file
  whose declared data cannot fit in its compressed size (deflate never packs more than
  about 1032 bytes into one), instead of astropy decompressing all of it looking for the
  next header.
- :func:`read_reduced` reads an image HDU row block by row block through astropy's
  ``section`` (plain files seek; ``.fits.gz`` streams forward; tile-compressed HDUs
  decompress only the tiles of the block) and averages ``f`` x ``f`` pixel boxes on the
  way, so only the reduced image and one block are ever in memory.
- :func:`reduce_pillow` shrinks a loaded Pillow image by box averaging, strip by strip,
  after JPEG draft mode has already decoded it at 1/2, 1/4 or 1/8 scale where it can.
"""

from __future__ import annotations

import gzip
import logging
import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

BLOCK = 2880
#: A header longer than this many 2880-byte blocks (about 2.9 MB, 36,000 cards) is refused.
MAX_HEADER_BLOCKS = 1000
#: Deflate's best case is about 1032:1 (258-byte matches coded in 2 bits); a gzip file
#: cannot decompress to more than this many times its size, plus a little slack.
GZIP_MAX_RATIO = 1032
_GZIP_SLACK = 1 << 20
#: Bytes of raw pixels read per block when reducing (a few rows of a huge image).
ROW_BLOCK_BYTES = 8 << 20
#: A tile-compressed image whose single tile would take more than this decompressed
#: (as float64) is refused: it cannot be read in bounded pieces.
MAX_TILE_BYTES = 512 << 20

_BYTES_PER_BITPIX = {8: 1, 16: 2, 32: 4, 64: 8, -32: 4, -64: 8}


class BoundedError(Exception):
    """A reason to refuse a file; ``imaging`` turns it into ``ImageLoadError``."""


# --------------------------------------------------------------------- gzip FITS walk


@dataclass(frozen=True)
class HduFacts:
    """What one HDU's header declares (numbers only; no data read)."""

    index: int
    extname: str
    is_image: bool
    compressed: bool  # a tile-compressed image (a BINTABLE with ZIMAGE = T)
    shape: tuple[int, ...]  # numpy order, of the image (ZNAXISn for compressed images)
    data_start: int  # offset of this HDU's data in the decompressed stream
    data_end: int  # offset of the end of this HDU's padded data
    header: Any  # astropy.io.fits.Header

    def selected_by(self, hdu: int | str | None) -> bool:
        """Whether this is the HDU that ``hdu`` (as in ``RenderSettings.hdu``) selects,
        given that the walk stopped here."""
        if hdu is None:
            return _has_data(self)
        if isinstance(hdu, str):
            return self.extname.upper() == hdu.strip().upper()
        return self.index == hdu


def _header_problem(block: bytes) -> str | None:
    if any(b < 0x20 or b > 0x7E for b in block):
        if not block.strip(b"\0"):
            return "it is all zero bytes"
        return "it holds bytes that are not printable ASCII"
    return None


def _read_header(stream: Any, first: bool, where: str) -> bytes | None:
    """The raw header at the stream's position; None at a clean end of file."""
    chunks: list[bytes] = []
    for n in range(MAX_HEADER_BLOCKS):
        block = stream.read(BLOCK)
        if not block and n == 0:
            return None
        if len(block) < BLOCK:
            if n == 0 and not first and not block.strip(b"\0 "):
                return None  # short zero/blank padding at the very end
            raise BoundedError(f"truncated FITS header ({where} ends early)")
        if n == 0:
            magic = b"SIMPLE  =" if first else b"XTENSION="
            if not block.startswith(magic):
                why = _header_problem(block) or f"it does not start with {magic[:8].decode()!r}"
                raise BoundedError(f"{where} is not a FITS header ({why})")
        problem = _header_problem(block)
        if problem:
            raise BoundedError(
                f"{where} has no END card before bytes that are not header text"
                f" (block {n + 1} of it: {problem.removeprefix('it ')})"
            )
        chunks.append(block)
        for i in range(0, BLOCK, 80):
            card = block[i : i + 80]
            if card[:8] == b"END     ":
                return b"".join(chunks)
    raise BoundedError(f"{where} has no END card in its first {MAX_HEADER_BLOCKS * BLOCK} bytes")


def _int(header: Any, key: str, default: int = 0) -> int:
    v = header.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise BoundedError(f"header keyword {key} is not an integer ({v!r})")
    return int(v)


def _facts(header: Any, index: int, start: int) -> HduFacts:
    bitpix = _int(header, "BITPIX", 8)
    if bitpix not in _BYTES_PER_BITPIX:
        raise BoundedError(f"HDU {index} has an invalid BITPIX ({bitpix})")
    naxis = _int(header, "NAXIS", 0)
    if not 0 <= naxis <= 999:
        raise BoundedError(f"HDU {index} has an invalid NAXIS ({naxis})")
    axes = [_int(header, f"NAXIS{i}", 0) for i in range(1, naxis + 1)]
    if any(a < 0 for a in axes):
        raise BoundedError(f"HDU {index} declares a negative axis length {axes}")
    groups = bool(header.get("GROUPS", False)) and naxis > 0 and axes[0] == 0
    values = math.prod(axes[1:] if groups else axes) if naxis else 0
    pcount = _int(header, "PCOUNT", 0)
    gcount = _int(header, "GCOUNT", 1)
    nbytes = _BYTES_PER_BITPIX[bitpix] * gcount * (pcount + values)
    end = start + -(-nbytes // BLOCK) * BLOCK
    xt = str(header.get("XTENSION", "") or "").strip().upper()
    if header.get("ZIMAGE") is True and xt == "BINTABLE":
        zn = _int(header, "ZNAXIS", 0)
        shape = tuple(_int(header, f"ZNAXIS{i}", 0) for i in range(zn, 0, -1))
        is_image = compressed = True
    else:
        shape = tuple(reversed(axes))
        is_image = index == 0 or xt == "IMAGE"
        compressed = False
    name = str(header.get("EXTNAME", "") or "").strip()
    return HduFacts(index, name, is_image, compressed, shape, start, end, header)


def _has_data(f: HduFacts) -> bool:
    return f.is_image and len(f.shape) >= 2 and min(f.shape) > 0


def check_gzip_fits(path: Path, compressed_size: int, hdu: int | str | None) -> list[HduFacts]:
    """Walk the headers of a gzip-compressed FITS file up to the HDU ``hdu`` would select.

    Reads only headers (skipping data by decompressing it), and refuses at once, with a
    :class:`BoundedError`, a first header that is not FITS, a later header that is not
    FITS before the wanted HDU is found, and declared data larger than the compressed
    size can hold.

    Returns
    -------
    list of HduFacts
        The HDUs walked, the wanted one last when it was found.
    """
    from astropy.io import fits

    limit = GZIP_MAX_RATIO * compressed_size + _GZIP_SLACK
    out: list[HduFacts] = []
    want_name = hdu.strip().upper() if isinstance(hdu, str) else None
    want_index = hdu if isinstance(hdu, int) and not isinstance(hdu, bool) and hdu >= 0 else None
    pos = 0
    with gzip.open(path, "rb") as stream:
        try:
            for index in range(10_000):
                where = "the primary header" if index == 0 else f"the header of HDU {index}"
                raw = _read_header(stream, index == 0, where)
                if raw is None:
                    break
                try:
                    header = fits.Header.fromstring(raw.decode("ascii"))
                except Exception as e:  # noqa: BLE001
                    raise BoundedError(f"{where} cannot be parsed ({type(e).__name__})") from None
                facts = _facts(header, index, pos + len(raw))
                if facts.data_end > limit:
                    raise BoundedError(
                        f"HDU {index} declares data up to byte {facts.data_end:,}, more than"
                        f" a {compressed_size:,}-byte gzip file can hold"
                        " (truncated file or decompression bomb)"
                    )
                out.append(facts)
                if want_index is not None and index >= want_index:
                    break
                if want_name is not None and facts.extname.upper() == want_name:
                    break
                if hdu is None and _has_data(facts):
                    break
                _skip(stream, facts.data_end - stream.tell())
                pos = facts.data_end
        except BoundedError as e:
            if out and hdu is None and not any(_has_data(f) for f in out):
                raise BoundedError(f"no image HDU with data before a bad header: {e}") from None
            raise
        except (EOFError, OSError, zlib.error) as e:
            raise BoundedError(
                f"truncated or corrupt gzip stream ({type(e).__name__}: {e})"
            ) from None
    return out


def _skip(stream: Any, n: int) -> None:
    while n > 0:
        got = stream.read(min(n, 1 << 22))
        if not got:
            raise BoundedError("file ends inside the data of an HDU (truncated)")
        n -= len(got)


# --------------------------------------------------------------------- reduction


def reduction_factor(height: int, width: int, max_side: int | None) -> int:
    """Smallest integer ``f`` with ``ceil(max(height, width) / f) <= max_side`` (1 = none)."""
    if max_side is None or max(height, width) <= max_side:
        return 1
    return -(-max(height, width) // max_side)


def block_mean(a: np.ndarray, f: int) -> np.ndarray:
    """Mean over ``f`` x ``f`` boxes of the first two axes, ignoring NaN.

    ``a`` is ``(rows, cols)`` or ``(rows, cols, bands)``; partial boxes at the edges are
    averaged over the pixels they hold; a box with no non-NaN value is NaN. Returns
    float32 of shape ``(ceil(rows / f), ceil(cols / f)[, bands])``.
    """
    two_d = a.ndim == 2
    if two_d:
        a = a[:, :, None]
    r, c, b = a.shape
    if f == 1:
        out = np.asarray(a, dtype=np.float32)
        return out[:, :, 0] if two_d else out
    rr, cc = -(-r // f) * f, -(-c // f) * f
    x = np.asarray(a, dtype=np.float32)
    nan = np.isnan(x)
    if (rr, cc) == (r, c) and not nan.any():
        out = _box_sum(x, f) * np.float32(1.0 / (f * f))
        return out[:, :, 0] if two_d else out
    x = np.where(nan, np.float32(0), x)
    ok = (~nan).astype(np.float32)
    if (rr, cc) != (r, c):
        pad = ((0, rr - r), (0, cc - c), (0, 0))
        x, ok = np.pad(x, pad), np.pad(ok, pad)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = _box_sum(x, f) / _box_sum(ok, f)
    return out[:, :, 0] if two_d else out


def _box_sum(x: np.ndarray, f: int) -> np.ndarray:
    """Sums over ``f`` x ``f`` boxes of a ``(rows, cols, bands)`` float32 array whose rows
    and columns are multiples of ``f`` (columns first: contiguous, so fast)."""
    r, c, b = x.shape
    s = x.reshape(r, c // f, f, b).sum(axis=2)
    return s.reshape(r // f, f, c // f, b).sum(axis=1)


def _core(shape: tuple[int, ...]) -> tuple[list[int], list[int]]:
    keep = [i for i, s in enumerate(shape) if s != 1] if len(shape) > 3 else list(range(len(shape)))
    return keep, [shape[i] for i in keep]


def _blank(header: Any) -> int | None:
    blank = header.get("BLANK")
    if not isinstance(blank, (int, np.integer)) or isinstance(blank, bool):
        return None
    return int(blank)


def read_reduced_stream(
    stream: Any,
    data_offset: int,
    header: Any,
    shape: tuple[int, ...],
    f: int,
    planes: list[int] | None,
) -> np.ndarray:
    """As :func:`read_reduced`, for an uncompressed image HDU read from ``stream`` (a
    plain file or a gzip stream), seeking only forward.

    astropy's ``section`` returns the file to where it was after every read, which for a
    gzip stream means decompressing from the start again each time; this reads straight
    through instead. BSCALE/BZERO and integer BLANK pixels are handled as astropy does.
    """
    bitpix = int(header.get("BITPIX", 8))
    dtype = np.dtype({8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}[bitpix])
    bscale = float(header.get("BSCALE", 1.0) or 1.0)
    bzero = float(header.get("BZERO", 0.0) or 0.0)
    blank = _blank(header) if dtype.kind in "iu" else None
    _, core = _core(shape)
    single = len(core) == 2 or planes is None  # a 2-D image or a band-last cube
    nb = core[2] if len(core) == 3 and planes is None else 1  # bands interleaved in rows
    ny, row_values = core[-2], core[-1]
    if nb > 1:
        ny, row_values = core[0], core[1] * core[2]
    wanted = [0] if single else list(planes or [])
    row_bytes = row_values * dtype.itemsize
    plane_bytes = ny * row_bytes
    step = max(1, ROW_BLOCK_BYTES // max(1, row_bytes) // f) * f
    done: dict[int, np.ndarray] = {}
    for p in sorted(set(wanted)):
        target = data_offset + p * plane_bytes
        if isinstance(stream, gzip.GzipFile) and target >= stream.tell():
            _skip(stream, target - stream.tell())  # decompress forward, never rewind
        else:
            stream.seek(target)
        out: list[np.ndarray] = []
        for y0 in range(0, ny, step):
            n = min(step, ny - y0)
            buf = stream.read(n * row_bytes)
            if len(buf) < n * row_bytes:
                raise BoundedError("file ends inside the image data (truncated)")
            raw = np.frombuffer(buf, dtype).reshape(n, -1)
            block = raw.astype(np.float32 if dtype.itemsize <= 2 else np.float64)
            if bscale != 1.0:
                block *= block.dtype.type(bscale)
            if bzero != 0.0:
                block += block.dtype.type(bzero)
            if blank is not None:
                block[raw == blank] = np.nan
            if nb > 1:
                block = block.reshape(n, -1, nb)
            out.append(block_mean(block, f))
        done[p] = np.concatenate(out, axis=0)
    return done[0] if single else np.stack([done[p] for p in wanted])


def read_reduced(
    hdu: Any,
    shape: tuple[int, ...],
    f: int,
    planes: list[int] | None,
) -> np.ndarray:
    """Read one image HDU reduced by ``f`` through ``hdu.section``, a block of rows at a time.

    Parameters
    ----------
    hdu : astropy image HDU (used for tile-compressed HDUs, whose ``section``
        decompresses only the tiles of each block)
    shape : tuple
        The HDU's full data shape (numpy order); length-1 axes beyond the last three
        must already be known to be length 1.
    f : int
        Reduction factor (box size).
    planes : list of int or None
        For a band-first cube (3 axes that matter, bands first), which planes to read;
        None = every plane (2-D images and band-last cubes).

    Returns
    -------
    numpy.ndarray
        float32, ``(h, w)``, ``(len(planes), h, w)`` or ``(h, w, bands)``; BSCALE/BZERO
        applied and integer BLANK pixels NaN, exactly as ``hdu.data`` would give them
        before the box average.
    """
    keep, core = _core(shape)
    blank = _blank(hdu.header)
    section = hdu.section
    tile = tuple(int(t) for t in getattr(hdu, "tile_shape", None) or shape)  # numpy order
    tile_values = math.prod(min(t, s) for t, s in zip(tile, shape, strict=False))
    if tile_values * 8 > MAX_TILE_BYTES:
        raise BoundedError(
            f"compression tiles of {'x'.join(map(str, reversed(tile)))} pixels are too large"
            f" to decompress one at a time (limit {MAX_TILE_BYTES // 2**20} MB)"
        )
    # rows per block: a multiple of f and of the tile height, so no tile is decompressed
    # twice (row tiles, fpack's default, make this a few rows)
    tile_rows = max(1, tile[keep[-3] if len(core) == 3 and planes is None else keep[-2]])

    def key(*parts: Any) -> tuple[Any, ...]:
        k: list[Any] = [0] * len(shape)
        for i, p in zip(keep, parts, strict=False):
            k[i] = p
        for i in keep[len(parts) :]:
            k[i] = slice(None)
        return tuple(k)

    def rows_of(plane: int | None, ny: int, row_bytes: int) -> np.ndarray:
        step = max(1, ROW_BLOCK_BYTES // max(1, row_bytes) // f) * f
        if step % tile_rows:
            unit = f * tile_rows // math.gcd(f, tile_rows)
            step = max(1, step // unit) * unit
        out: list[np.ndarray] = []
        for y0 in range(0, ny, step):
            sl = slice(y0, min(ny, y0 + step))
            raw = np.asarray(section[key(sl) if plane is None else key(plane, sl)])
            if raw.dtype.kind not in "biuf":
                raise BoundedError(f"unsupported data type {raw.dtype}")
            block = raw.astype(np.float32)
            if blank is not None and raw.dtype.kind in "iu":
                block[raw == blank] = np.nan
            out.append(block_mean(block, f))
        return np.concatenate(out, axis=0)

    itemsize = 8
    if len(core) == 2:
        return rows_of(None, core[0], core[1] * itemsize)
    if planes is None:  # band-last (ny, nx, nb)
        return rows_of(None, core[0], core[1] * core[2] * itemsize)
    return np.stack([rows_of(p, core[1], core[2] * itemsize) for p in planes])


# --------------------------------------------------------------------- Pillow


def reduce_pillow(im: Any, f: int, mode: str) -> Any:
    """Box-average a loaded Pillow image by ``f``, converting strips of it to ``mode``.

    Only one strip (a few megabytes) is converted at a time, so an RGBA or palette
    image is never copied whole. ``mode`` must be one Pillow's ``reduce`` handles
    (``L``, ``RGB``, ``RGBa``, ``La``, ``I``, ``F``).
    """
    from PIL import Image

    w, h = im.size
    out = Image.new(mode, (-(-w // f), -(-h // f)))
    step = max(1, ROW_BLOCK_BYTES // max(1, 4 * w) // f) * f
    for y0 in range(0, h, step):
        y1 = min(h, y0 + step)
        strip = im.crop((0, y0, w, y1))
        if strip.mode != mode:
            strip = _convert(strip, mode)
        out.paste(strip.reduce(f), (0, y0 // f))
    return out


def _convert(strip: Any, mode: str) -> Any:
    if strip.mode.startswith("I;16") and mode == "I":
        return strip.convert("I")
    if mode in ("RGBa", "La") and strip.mode not in ("RGBA", "LA"):
        strip = strip.convert("RGBA" if mode == "RGBa" else "LA")
    return strip.convert(mode)
