"""Turn image files (FITS, JPEG, PNG, TIFF) into RGB arrays ready for a vision model.

One loader for every format: :func:`load_rgb` sniffs the file's content (not its name),
reads FITS with astropy and everything else with Pillow, and returns an ``(H, W, 3)``
``uint8`` array. FITS data are rendered with DS9-style stretches and limits
(:func:`stretch`); three or more bands become colour through Lupton et al. (2004) asinh
(:func:`astropy.visualization.make_lupton_rgb`) or a per-band stretch.

Every problem with an input file is raised as :class:`ImageLoadError`, whose message
names the file and says what is wrong with it; no other exception type escapes
:func:`load_rgb`, :func:`load_fits_data` or :func:`read_header`.

Notes
-----
``load_rgb`` is called from thread pools on thousands of files, so this module does not
use :class:`warnings.catch_warnings` on that path (it swaps process-global state and is
not thread-safe before Python 3.14). Instead of escalating astropy's "file may have been
truncated" warning, the loader checks the file length against what the header promises
and reads the data inside the ``try``; instead of escalating Pillow's
``DecompressionBombWarning``, it refuses any image above ``PIL.Image.MAX_IMAGE_PIXELS``
itself (the threshold at which Pillow would warn), and Pillow's own hard limit stays on.

Memory is bounded (issue 11): an image larger than :data:`MAX_RENDER_SIDE` on its longer
side is reduced *while it is decoded*, by the smallest integer factor ``f`` that brings it
under the cap, averaging ``f`` x ``f`` boxes (NaN ignored):

- JPEG: libjpeg's draft mode decodes at 1/2, 1/4 or 1/8 scale first;
- other Pillow formats: the decoded image (at most ``PIL.Image.MAX_IMAGE_PIXELS`` pixels,
  about 360 MB) is reduced strip by strip, never converted or copied whole;
- FITS: the data are read a block of rows at a time (plain files and ``.fits.gz``
  streams straight through, ``.fits.fz`` tile by tile), and of a cube only the planes
  shown are read.

Sizes are checked from the headers before anything is allocated (:data:`MAX_FITS_PIXELS`,
:data:`MAX_FITS_VALUES`, :data:`MAX_DECODE_BYTES`), and the headers of a ``.fits.gz`` are
walked in the decompressed stream first, so that a gzip bomb (a header that is not FITS,
or more declared data than the file can hold) is refused in milliseconds. Images within
the cap are read and rendered exactly as before.
"""

from __future__ import annotations

import logging
import math
import os
import re
import stat as _stat
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from galaxy_explorer.core import _bounded

if TYPE_CHECKING:
    from astropy.io import fits as _fits

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageLoadError",
    "RenderSettings",
    "is_image_path",
    "load_fits_data",
    "load_rgb",
    "read_header",
    "sky_position",
    "stretch",
    "thumbnail",
    "zscale_limits",
]

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".fits", ".fit", ".fts", ".fits.gz", ".fits.fz",
    ".jpg", ".jpeg", ".png", ".tif", ".tiff",
)  # fmt: skip
FITS_EXTENSIONS: tuple[str, ...] = (".fits", ".fit", ".fts", ".fits.gz", ".fits.fz")

STRETCHES: tuple[str, ...] = ("linear", "log", "sqrt", "asinh", "histeq")
LIMITS: tuple[str, ...] = ("minmax", "percentile", "zscale")

#: :func:`load_rgb` returns images at most this many pixels on their longer side: larger
#: ones are reduced while they are decoded (box average by an integer factor), so one
#: call holds at most the reduced image and one block of rows. The model sees a crop of
#: a few hundred pixels and the detail panel a window of about a thousand, so 2048 loses
#: nothing anyone looks at, and it caps one rendered RGB image at 12 MB.
MAX_RENDER_SIDE = 2048
#: FITS images with more pixels per plane than this are refused, from the header, before
#: any data is read (30,000 x 30,000: larger than any survey tile, e.g. Euclid MER tiles
#: are 19,200 square; reading one reduced costs time, never memory).
MAX_FITS_PIXELS = 30_000 * 30_000
#: ... and so are HDUs with more values than this in all (three such planes).
MAX_FITS_VALUES = 3 * MAX_FITS_PIXELS
#: :func:`load_fits_data` returns the whole array, so it refuses more values than this
#: (1.2 GB as float32); :func:`load_rgb` reads larger images reduced instead.
MAX_FULL_READ_VALUES = 300_000_000
#: FITS data above this many values are read through the bounded reader even when no
#: reduction is needed (a cube with many planes: only the planes shown are read).
_SMALL_READ_VALUES = 64_000_000
#: Pillow images whose decoded pixels would take more bytes than this are refused from
#: their declared size (a backstop: Pillow's own ``MAX_IMAGE_PIXELS`` check, kept on,
#: refuses them first unless an application raised it).
MAX_DECODE_BYTES = 512 * 2**20

#: Version of the rendering code; part of :meth:`RenderSettings.key` so that a change in
#: how pixels are rendered invalidates cached embeddings.
_RENDER_VERSION = 2  # 2: survey colour for cubes with named bands

_LIMIT_SAMPLE = 1 << 18  # limits are estimated from at most ~262k pixels
_LOG_A = 1000.0  # DS9 log exponent
_ASINH_A = 10.0  # asinh softening: y = asinh(a x) / asinh(a)
_LUPTON_Q = 8.0

_FITS_MAGIC = b"SIMPLE"  # anything that claims to be FITS goes to astropy, never to Pillow
_GZIP_MAGIC = b"\x1f\x8b"


# --------------------------------------------------------------------------- errors


class ImageLoadError(Exception):
    """A file could not be turned into an image.

    ``str(error)`` is ``"<path>: <reason>"``, a one-line message fit for a user.

    Parameters
    ----------
    path : str or Path
        The offending file.
    reason : str
        What is wrong with it, specific and short (e.g. ``"truncated FITS file"``).

    Attributes
    ----------
    path : Path
    reason : str
    """

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = Path(path)
        self.reason = str(reason)
        super().__init__(f"{self.path}: {self.reason}")

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across processes
        return (type(self), (self.path, self.reason))


# ------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class RenderSettings:
    """How FITS data are rendered to RGB (JPEG/PNG/TIFF are used as they are).

    Parameters
    ----------
    stretch : {"linear", "log", "sqrt", "asinh", "histeq"}
        Intensity stretch (DS9 semantics) applied between the limits.
    limits : {"minmax", "percentile", "zscale"}
        How the black and white points are chosen.
    percentile : float
        For ``limits="percentile"``: the white point is this percentile of the finite
        pixels and the black point is ``100 - percentile``.
    hdu : int, str or None
        HDU index or EXTNAME; ``None`` = the primary HDU if it holds an image, else the
        first image HDU with data.
    bands : (int, int, int) or None
        Cube plane indices used for R, G, B. ``None`` = automatic: for band-first cubes
        (``NAXIS3`` = bands, e.g. Legacy Survey ``grz``) planes are taken to run from
        blue to red, so R = the last plane and B = the first; band-last arrays
        (``(H, W, 3)``, as written from an RGB picture) are taken as R, G, B.
    lupton : bool
        For 2+ bands: combine with Lupton asinh (colours preserved; ``stretch`` is then
        not used), else stretch each band on its own.
    """

    stretch: str = "asinh"
    limits: str = "percentile"
    percentile: float = 99.5
    hdu: int | str | None = None
    bands: tuple[int, int, int] | None = None
    lupton: bool = True

    def __post_init__(self) -> None:
        if self.stretch not in STRETCHES:
            raise ValueError(
                f"unknown stretch {self.stretch!r}; choose from {', '.join(STRETCHES)}"
            )
        if self.limits not in LIMITS:
            raise ValueError(f"unknown limits {self.limits!r}; choose from {', '.join(LIMITS)}")
        if not 50.0 < float(self.percentile) <= 100.0:
            raise ValueError(f"percentile must be in (50, 100], got {self.percentile!r}")
        if self.bands is not None:
            if len(self.bands) != 3 or any(int(b) != b or b < 0 for b in self.bands):
                raise ValueError(f"bands must be three plane indices >= 0, got {self.bands!r}")
            object.__setattr__(self, "bands", tuple(int(b) for b in self.bands))
        if self.hdu is not None and (
            not isinstance(self.hdu, (int, str)) or isinstance(self.hdu, bool)
        ):
            raise ValueError(f"hdu must be an index, an EXTNAME or None, got {self.hdu!r}")

    def key(self) -> str:
        """A stable short string identifying this rendering (the cache's render key).

        Returns
        -------
        str
            e.g. ``"r1-asinh-p99.5-hauto-bauto-lup"``.
        """
        lim = f"p{float(self.percentile):g}" if self.limits == "percentile" else self.limits
        hdu = "auto" if self.hdu is None else str(self.hdu).upper()  # EXTNAMEs: any case
        bands = "auto" if self.bands is None else ".".join(map(str, self.bands))
        mode = "lup" if self.lupton else "sep"
        return f"r{_RENDER_VERSION}-{self.stretch}-{lim}-h{hdu}-b{bands}-{mode}"


_DEFAULT_SETTINGS = RenderSettings()


# ------------------------------------------------------------------------- helpers


def is_image_path(path: str | os.PathLike[str]) -> bool:
    """Whether ``path``'s name ends with one of :data:`IMAGE_EXTENSIONS` (any case)."""
    return os.fspath(path).lower().endswith(IMAGE_EXTENSIONS)


def _is_fits_name(path: Path) -> bool:
    return path.name.lower().endswith(FITS_EXTENSIONS)


def _sniff(path: Path) -> tuple[bytes, int]:
    """Check that ``path`` is a readable, non-empty regular file; return its first bytes
    and its size. Raises :class:`ImageLoadError` otherwise."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ImageLoadError(path, "no such file") from None
    except PermissionError:
        raise ImageLoadError(path, "permission denied") from None
    except OSError as e:
        raise ImageLoadError(path, f"cannot access file ({e.strerror or e})") from None
    if _stat.S_ISDIR(st.st_mode):
        raise ImageLoadError(path, "is a directory, not an image file")
    if not _stat.S_ISREG(st.st_mode):
        raise ImageLoadError(path, "not a regular file")
    if st.st_size == 0:
        raise ImageLoadError(path, "empty file (0 bytes)")
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except PermissionError:
        raise ImageLoadError(path, "permission denied (file is not readable)") from None
    except OSError as e:
        raise ImageLoadError(path, f"cannot read file ({e.strerror or e})") from None
    return head, st.st_size


def _exc_text(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


# ------------------------------------------------------------------------- FITS


def _open_fits(path: Path, gz: bool = False) -> _fits.HDUList:
    from astropy.io import fits

    try:
        return fits.open(path, memmap=False, lazy_load_hdus=True)
    except ImageLoadError:
        raise
    except (EOFError, OSError, ValueError, TypeError, KeyError, IndexError) as e:
        msg = str(e)
        if gz or isinstance(e, EOFError) or "end-of-stream" in msg:
            raise ImageLoadError(
                path, f"truncated or corrupt gzip-compressed FITS file ({_exc_text(e)})"
            ) from None
        if "Empty or corrupt" in msg or "END card" in msg:
            raise ImageLoadError(path, "corrupt or truncated FITS header") from None
        raise ImageLoadError(path, f"corrupt FITS file ({_exc_text(e)})") from None


def _is_image_hdu(hdu: Any) -> bool:
    from astropy.io import fits

    return isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU))


def _hdu_shape(hdu: Any) -> tuple[int, ...]:
    hdr = hdu.header
    n = int(hdr.get("NAXIS", 0) or 0)
    # numpy order: (NAXISn, ..., NAXIS1)
    return tuple(int(hdr.get(f"NAXIS{i}", 0) or 0) for i in range(n, 0, -1))


def _hdu_label(index: int, hdu: Any) -> str:
    name = getattr(hdu, "name", "") or ""
    return f"HDU {index} ({name})" if name and name != "PRIMARY" else f"HDU {index}"


def _n_hdus(hdul: _fits.HDUList) -> int | None:
    """Number of HDUs (reads every header), or None when a later header is corrupt."""
    try:
        return len(hdul)
    except Exception:  # noqa: BLE001
        return None


def _select_hdu(
    path: Path, hdul: _fits.HDUList, hdu: int | str | None, *, need_image: bool = True
) -> tuple[int, Any]:
    """Pick the image HDU to use, looking at headers only (no data read). With
    ``need_image=False`` an explicitly named HDU of any kind is accepted.

    Headers are read lazily: a plain cutout costs one header, not a scan of the file."""
    if hdu is None:
        i = 0
        while True:
            try:
                h = hdul[i]
            except IndexError:
                break
            except Exception as e:  # noqa: BLE001 - a corrupt header after the good ones
                raise ImageLoadError(
                    path, f"corrupt FITS file (cannot read HDU {i}: {_exc_text(e)})"
                ) from None
            shape = _hdu_shape(h)
            if _is_image_hdu(h) and len(shape) >= 2 and min(shape) > 0:
                return i, h
            i += 1
        kinds = ", ".join(type(h).__name__ for h in hdul)
        raise ImageLoadError(path, f"no image HDU with data in this FITS file (HDUs: {kinds})")
    try:
        if isinstance(hdu, str):
            idx = hdul.index_of(hdu)
        else:
            idx = int(hdu)
            if idx < 0:
                n = _n_hdus(hdul)
                idx += n if n is not None else 0
        if idx < 0:
            raise IndexError(idx)
        h = hdul[idx]
    except (KeyError, IndexError):
        n = _n_hdus(hdul)
        where = f"{n} HDU(s)" if n is not None else "fewer readable HDUs"
        raise ImageLoadError(path, f"no HDU {hdu!r} in this FITS file (it has {where})") from None
    if not need_image:
        return idx, h
    if not _is_image_hdu(h):
        raise ImageLoadError(path, f"{_hdu_label(idx, h)} is a {type(h).__name__}, not an image")
    shape = _hdu_shape(h)
    if len(shape) < 2 or min(shape) == 0:
        raise ImageLoadError(path, f"{_hdu_label(idx, h)} holds no image data (shape {shape})")
    return idx, h


def _check_size(path: Path, shape: tuple[int, ...], whole: bool = False) -> None:
    plane = _image_dims(shape)
    total = math.prod(shape)
    dims = "x".join(str(s) for s in reversed(shape))
    if plane[0] * plane[1] > MAX_FITS_PIXELS or total > MAX_FITS_VALUES:
        raise ImageLoadError(
            path,
            f"image too large ({dims} pixels; limit {MAX_FITS_PIXELS // 1_000_000} megapixels"
            " per plane): refusing a possible decompression bomb",
        )
    if whole and total > MAX_FULL_READ_VALUES:
        raise ImageLoadError(
            path,
            f"image too large to read whole ({dims} values; limit"
            f" {MAX_FULL_READ_VALUES // 1_000_000} million): load_rgb renders it reduced",
        )


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(s for s in shape if s != 1) if len(shape) > 3 else shape


def _image_dims(shape: tuple[int, ...]) -> tuple[int, int]:
    """(rows, columns) of the image in a data shape (the other axis of a cube = bands)."""
    sq = _squeezed(shape)
    if len(sq) == 3 and _band_axis(sq) == 2:
        return sq[0], sq[1]
    if len(sq) >= 2:
        return sq[-2], sq[-1]
    return (sq[0] if sq else 1), 1


def _data_error(
    path: Path,
    e: Exception,
    label: str,
    gz: bool,
    info_end: int | None,
    file_size: int,
    what: str = "image data",
) -> ImageLoadError:
    """The one-line error for an exception raised while reading ``label``'s data.

    Out of memory; a gzip stream cut short or corrupt; a file shorter than its headers
    say (``info_end`` past ``file_size``); else corrupt ``what``.
    """
    if isinstance(e, MemoryError):
        return ImageLoadError(path, f"out of memory reading {label}")
    if gz or isinstance(e, EOFError) or "end-of-stream" in str(e):
        return ImageLoadError(
            path, f"truncated or corrupt gzip-compressed FITS file ({_exc_text(e)})"
        )
    if info_end is not None and info_end > file_size:
        return ImageLoadError(path, f"truncated FITS file ({label} is cut short)")
    return ImageLoadError(path, f"corrupt {what} in {label} ({_exc_text(e)})")


def _read_hdu_data(path: Path, hdu: Any, label: str, file_size: int, gz: bool) -> np.ndarray:
    """Read one image HDU's data as float32, with truncation turned into an error."""
    from astropy.io import fits

    shape = _hdu_shape(hdu)
    _check_size(path, shape, whole=True)
    compressed = isinstance(hdu, fits.CompImageHDU)
    info_end = _check_length(path, hdu, shape, label, file_size, gz)
    try:
        raw = hdu.data
    except ImageLoadError:
        raise
    except Exception as e:  # noqa: BLE001 - astropy raises many kinds on bad data
        what = "compressed image data" if compressed else "image data"
        raise _data_error(path, e, label, gz, info_end, file_size, what) from None
    if raw is None:
        raise ImageLoadError(path, f"{label} holds no image data")
    raw = np.asarray(raw)
    if raw.dtype.kind not in "biuf":
        raise ImageLoadError(path, f"{label} has unsupported data type {raw.dtype}")
    data = raw.astype(np.float32)  # native byte order, a copy we own
    if raw.dtype.kind in "iu":
        blank = hdu.header.get("BLANK")
        if isinstance(blank, (int, np.integer)) and not isinstance(blank, bool):
            data[raw == blank] = np.nan
    return data


def _check_length(
    path: Path, hdu: Any, shape: tuple[int, ...], label: str, file_size: int, gz: bool
) -> int | None:
    """For a plain file: refuse one shorter than the header promises; return where the
    HDU's data end (None when unknown)."""
    from astropy.io import fits

    if gz:
        return None
    info_end = None
    try:
        info = hdu.fileinfo()
        info_end = int(info["datLoc"]) + int(info["datSpan"])
        if not isinstance(hdu, fits.CompImageHDU):
            bitpix = abs(int(hdu.header.get("BITPIX", 8)))
            need = int(info["datLoc"]) + bitpix // 8 * math.prod(shape)
            if need > file_size:
                raise ImageLoadError(
                    path,
                    f"truncated FITS file ({file_size} bytes; {label} needs {need})",
                )
    except ImageLoadError:
        raise
    except Exception as e:  # noqa: BLE001 - fileinfo is best effort
        log.debug("%s: fileinfo failed: %s", path, e)
    return info_end


def _squeeze_to_image(path: Path, data: np.ndarray, label: str) -> np.ndarray:
    if data.ndim > 3:
        data = data.reshape([s for s in data.shape if s != 1] or [1])
    if data.ndim > 3:
        raise ImageLoadError(
            path, f"{label} has {data.ndim} data axes {data.shape}; expected 2 or 3"
        )
    if data.ndim < 2:
        raise ImageLoadError(path, f"{label} is not an image (shape {data.shape})")
    return data


def load_fits_data(
    path: str | os.PathLike[str], hdu: int | str | None = None
) -> tuple[np.ndarray, _fits.Header]:
    """Read the raw pixel data of one FITS image HDU.

    Parameters
    ----------
    path : str or Path
        A FITS file (plain, ``.fits.gz`` or with tile-compressed HDUs such as ``.fits.fz``).
    hdu : int, str or None
        HDU index or EXTNAME; ``None`` = the primary HDU if it holds an image, else the
        first image HDU with data.

    Returns
    -------
    data : numpy.ndarray
        float32, native byte order, BSCALE/BZERO applied and integer BLANK pixels set to
        NaN; 2-D ``(ny, nx)`` or 3-D (length-1 axes beyond the third dropped). NaN/Inf are
        kept as they are.
    header : astropy.io.fits.Header
        The header of that HDU (for compressed HDUs, the image header).

    Raises
    ------
    ImageLoadError
        On any problem (missing, unreadable, not FITS, truncated, no image HDU, too large,
        no finite pixel, ...).
    """
    path = Path(path)
    head, size = _sniff(path)
    gz = head.startswith(_GZIP_MAGIC)
    if not (head.startswith(_FITS_MAGIC) or gz):
        raise ImageLoadError(path, "not a FITS file (does not start with SIMPLE)")
    return _load_fits(path, hdu, size, gz)[:2]


def _precheck_gzip(path: Path, size: int, hdu: int | str | None) -> list[_bounded.HduFacts]:
    """Refuse a ``.fits.gz`` whose headers are not FITS or whose declared data cannot fit
    in it, before astropy decompresses it (see :func:`_bounded.check_gzip_fits`)."""
    try:
        return _bounded.check_gzip_fits(path, size, hdu)
    except _bounded.BoundedError as e:
        raise ImageLoadError(path, f"gzip-compressed FITS file refused: {e}") from None
    except (EOFError, OSError, zlib.error) as e:
        raise ImageLoadError(
            path, f"truncated or corrupt gzip-compressed FITS file ({_exc_text(e)})"
        ) from None


@dataclass(frozen=True)
class _Plan:
    """How a FITS HDU too big to read whole is read: reduction factor and planes."""

    f: int
    axis: int  # band axis of a 3-D image (0 or 2); 0 for 2-D
    planes: list[int] | None  # band-first planes to read, in this order
    settings: RenderSettings  # settings to render the planes read with


def _plan(
    path: Path, label: str, shape: tuple[int, ...], settings: RenderSettings, max_side: int
) -> _Plan | None:
    """None when the whole HDU is read as before (small), else how to read it bounded."""

    sq = _squeezed(shape)
    if len(sq) > 3:
        raise ImageLoadError(path, f"{label} has {len(sq)} data axes {sq}; expected 2 or 3")
    ny, nx = _image_dims(shape)
    f = _bounded.reduction_factor(ny, nx, max_side)
    if f == 1 and math.prod(shape) <= _SMALL_READ_VALUES:
        return None
    if len(sq) != 3:
        return _Plan(f, 0, None, settings)
    axis = _band_axis(sq)
    if axis == 2:
        return _Plan(f, 2, None, settings)
    n = sq[0]
    if n <= 3:
        if settings.bands is not None:
            _pick_bands(n, 0, settings.bands, path)  # the same error for a bad index
        return _Plan(f, 0, list(range(n)), settings)
    idx = _pick_bands(n, 0, settings.bands, path)  # three planes, no mean (n > 3)
    return _Plan(f, 0, idx, replace(settings, bands=(0, 1, 2)))


def _has_image_data(facts: _bounded.HduFacts) -> bool:
    return (
        facts.is_image
        and not facts.compressed
        and len(facts.shape) >= 2
        and min(facts.shape) > 0
        and int(facts.header.get("BITPIX", 0) or 0) in (8, 16, 32, 64, -32, -64)
    )


def _read_gzip_planned(path: Path, facts: _bounded.HduFacts, label: str, plan: _Plan) -> np.ndarray:
    import gzip

    try:
        with gzip.open(path, "rb") as stream:
            return _bounded.read_reduced_stream(
                stream, facts.data_start, facts.header, facts.shape, plan.f, plan.planes
            )
    except _bounded.BoundedError as e:
        raise ImageLoadError(
            path, f"truncated or corrupt gzip-compressed FITS file ({label}: {e})"
        ) from None
    except MemoryError:
        raise ImageLoadError(path, f"out of memory reading {label}") from None
    except Exception as e:  # noqa: BLE001 - gzip / zlib raise several kinds
        raise ImageLoadError(
            path, f"truncated or corrupt gzip-compressed FITS file ({_exc_text(e)})"
        ) from None


def _read_planned(path: Path, h: Any, label: str, size: int, gz: bool, plan: _Plan) -> np.ndarray:
    import gzip

    from astropy.io import fits

    shape = _hdu_shape(h)
    _check_size(path, shape)
    info_end = _check_length(path, h, shape, label, size, gz)
    try:
        if isinstance(h, fits.CompImageHDU):
            data = _bounded.read_reduced(h, shape, plan.f, plan.planes)
        else:
            offset = int(h.fileinfo()["datLoc"])
            opener = gzip.open if gz else open
            with opener(path, "rb") as stream:
                data = _bounded.read_reduced_stream(
                    stream, offset, h.header, shape, plan.f, plan.planes
                )
    except ImageLoadError:
        raise
    except _bounded.BoundedError as e:
        raise ImageLoadError(path, f"{label}: {e}") from None
    except Exception as e:  # noqa: BLE001 - astropy raises many kinds on bad data
        raise _data_error(path, e, label, gz, info_end, size) from None
    log.debug("%s: %s %s read reduced by %d to %s", path, label, shape, plan.f, data.shape)
    return data


def _load_fits(
    path: Path,
    hdu: int | str | None,
    size: int,
    gz: bool,
    settings: RenderSettings | None = None,
    max_side: int | None = None,
) -> tuple[np.ndarray, Any, _Plan | None]:
    """(data, header, plan): the whole data (plan None) or, with ``settings`` and
    ``max_side``, the data reduced and restricted to the planes ``plan`` says."""
    if gz:
        walked = _precheck_gzip(path, size, hdu)
        last = walked[-1] if walked else None
        if (
            last is not None
            and settings is not None
            and max_side is not None
            and last.selected_by(hdu)
            and _has_image_data(last)
        ):
            # read a big plain image straight from the stream: astropy would decompress
            # past its data once more just to open the file
            label = f"HDU {last.index} ({last.extname})" if last.extname else f"HDU {last.index}"
            if last.index == 0 or last.extname == "PRIMARY":
                label = f"HDU {last.index}"
            _check_size(path, last.shape)
            plan = _plan(path, label, last.shape, settings, max_side)
            if plan is not None:
                data = _read_gzip_planned(path, last, label, plan)
                if not np.isfinite(data).any():
                    raise ImageLoadError(path, f"{label} has no finite pixel values (all NaN/Inf)")
                return data, last.header, plan
    hdul = _open_fits(path, gz)
    plan = None
    try:
        try:
            idx, h = _select_hdu(path, hdul, hdu)
            label = _hdu_label(idx, h)
            header = h.header.copy()
            if settings is not None and max_side is not None:
                shape = _hdu_shape(h)
                _check_size(path, shape)
                plan = _plan(path, label, shape, settings, max_side)
            if plan is None:
                data = _read_hdu_data(path, h, label, size, gz)
            else:
                data = _read_planned(path, h, label, size, gz, plan)
        except ImageLoadError:
            raise
        except (EOFError, OSError, ValueError, TypeError, KeyError, IndexError) as e:
            if gz or isinstance(e, EOFError) or "end-of-stream" in str(e):
                raise ImageLoadError(
                    path, f"truncated or corrupt gzip-compressed FITS file ({_exc_text(e)})"
                ) from None
            raise ImageLoadError(path, f"corrupt FITS file ({_exc_text(e)})") from None
    finally:
        try:
            hdul.close()
        except Exception:  # noqa: BLE001
            pass
    if plan is None:
        data = _squeeze_to_image(path, data, label)
    if not np.isfinite(data).any():
        raise ImageLoadError(path, f"{label} has no finite pixel values (all NaN/Inf)")
    return data, header, plan


# --------------------------------------------------------------------- stretches


def _finite_sample(data: np.ndarray) -> np.ndarray:
    flat = data.ravel()
    if flat.size > _LIMIT_SAMPLE:
        flat = flat[:: flat.size // _LIMIT_SAMPLE + 1]
    finite = np.isfinite(flat)
    return flat if finite.all() else flat[finite]


def zscale_limits(data: np.ndarray) -> tuple[float, float]:
    """IRAF/DS9 zscale limits of the finite values in ``data``.

    Parameters
    ----------
    data : numpy.ndarray
        Any shape; NaN/Inf are ignored.

    Returns
    -------
    (float, float)
        ``(low, high)``.

    Raises
    ------
    ValueError
        If ``data`` has no finite value.
    """
    from astropy.visualization import ZScaleInterval

    values = _finite_sample(np.asarray(data, dtype=np.float32))
    if values.size == 0:
        raise ValueError("zscale_limits: no finite values")
    lo, hi = ZScaleInterval().get_limits(values)
    return float(lo), float(hi)


def _limits(values: np.ndarray, limits: str, percentile: float) -> tuple[float, float]:
    """Black and white points from ``values`` (finite, 1-D, non-empty)."""
    if limits == "minmax":
        return float(values.min()), float(values.max())
    if limits == "percentile":
        p = float(percentile)
        if p >= 100.0:
            return float(values.min()), float(values.max())
        lo, hi = np.percentile(values, [100.0 - p, p])
        return float(lo), float(hi)
    if limits == "zscale":
        return zscale_limits(values)
    raise ValueError(f"unknown limits {limits!r}; choose from {', '.join(LIMITS)}")


def _apply_stretch(x: np.ndarray, name: str) -> np.ndarray:
    """Stretch ``x`` in [0, 1] (float32, modified in place where possible)."""
    if name == "linear":
        return x
    if name == "sqrt":
        return np.sqrt(x, out=x)
    if name == "log":
        x *= _LOG_A
        x += 1.0
        np.log10(x, out=x)
        x *= 1.0 / math.log10(_LOG_A + 1.0)
        return x
    if name == "asinh":
        x *= _ASINH_A
        np.arcsinh(x, out=x)
        x *= 1.0 / math.asinh(_ASINH_A)
        return x
    if name == "histeq":
        sample = x.ravel()
        if sample.size > _LIMIT_SAMPLE:
            sample = sample[:: sample.size // _LIMIT_SAMPLE + 1]
        hist, edges = np.histogram(sample, bins=1024, range=(0.0, 1.0))
        cdf = np.cumsum(hist, dtype=np.float64)
        if cdf[-1] <= 0:
            return x
        cdf /= cdf[-1]
        cdf = np.concatenate([[0.0], cdf])  # the black point stays black
        return np.interp(x, edges, cdf).astype(np.float32)
    raise ValueError(f"unknown stretch {name!r}; choose from {', '.join(STRETCHES)}")


def stretch(
    data2d: np.ndarray,
    stretch: str = "asinh",
    limits: str = "percentile",
    percentile: float = 99.5,
) -> np.ndarray:
    """Map raw pixel values to display intensities in [0, 1] (DS9 semantics).

    Values are clipped to the limits, scaled to [0, 1], then stretched: ``linear`` x,
    ``sqrt`` √x, ``log`` log10(1000x + 1)/log10(1001), ``asinh`` asinh(10x)/asinh(10),
    ``histeq`` histogram equalisation.

    Parameters
    ----------
    data2d : numpy.ndarray
        Raw values (any shape; usually 2-D). NaN and -Inf become 0, +Inf becomes 1.
    stretch : {"linear", "log", "sqrt", "asinh", "histeq"}
    limits : {"minmax", "percentile", "zscale"}
    percentile : float
        For ``limits="percentile"``: white point percentile; black point ``100 - p``.

    Returns
    -------
    numpy.ndarray
        float32 array of the same shape, values in [0, 1]. All zeros where the data are
        constant or have no finite value.

    Raises
    ------
    ValueError
        For an unknown stretch or limits name.
    """
    if stretch not in STRETCHES:
        raise ValueError(f"unknown stretch {stretch!r}; choose from {', '.join(STRETCHES)}")
    if limits not in LIMITS:
        raise ValueError(f"unknown limits {limits!r}; choose from {', '.join(LIMITS)}")
    data = np.asarray(data2d, dtype=np.float32)
    values = _finite_sample(data)
    if values.size == 0:
        return np.zeros(data.shape, np.float32)
    lo, hi = _limits(values, limits, percentile)
    return _stretch_between(data, lo, hi, stretch)


def _stretch_between(data: np.ndarray, lo: float, hi: float, name: str) -> np.ndarray:
    span = hi - lo
    if not (math.isfinite(span) and span > 0):
        out = np.zeros(data.shape, np.float32)
        out[np.isposinf(data)] = 1.0
        return out
    if span < 1e38:
        x = np.subtract(data, np.float32(lo), dtype=np.float32)
        x *= np.float32(1.0 / span)
    else:  # data near float32's limit: data - lo would overflow to Inf (a wrong white)
        x = (np.subtract(data, lo, dtype=np.float64) * (1.0 / span)).astype(np.float32)
    np.clip(x, 0.0, 1.0, out=x)  # +Inf -> 1, -Inf -> 0, NaN stays NaN
    nan = np.isnan(x)
    if nan.any():
        x[nan] = 0.0
    x = _apply_stretch(x, name)
    np.clip(x, 0.0, 1.0, out=x)
    if nan.any():
        x[nan] = 0.0  # histeq can lift the black point; blank pixels stay black
    return x


def _to_uint8(x: np.ndarray) -> np.ndarray:
    y = x * np.float32(255.0)
    y += np.float32(0.5)
    np.clip(y, 0.0, 255.0, out=y)
    return y.astype(np.uint8)


def _band_axis(shape: tuple[int, ...]) -> int:
    """0 (band-first) or 2 (band-last) for a 3-D array."""
    n0, _, n2 = shape
    if n2 < n0 and n2 <= 16:
        return 2
    return 0


def _pick_bands(
    n: int, band_axis: int, bands: tuple[int, int, int] | None, path: Path
) -> list[int]:
    if bands is not None:
        bad = [b for b in bands if b >= n]
        if bad:
            raise ImageLoadError(path, f"band index {bad[0]} out of range: the cube has {n} planes")
        return list(bands)
    if n == 2:
        return [1, -1, 0]  # -1: mean of the two
    if band_axis == 2 and n in (3, 4):
        return [0, 1, 2]  # an RGB(A) picture saved as FITS
    # survey cubes run blue -> red along NAXIS3: R = reddest, B = bluest
    return [n - 1, (n - 1) // 2 if n > 3 else 1, 0]


#: Legacy Survey viewer colour scales per band (legacypipe ``sdss_rgb``), for nanomaggy images
SURVEY_SCALES: dict[str, float] = {"u": 15.0, "g": 6.0, "r": 3.4, "i": 1.0, "z": 2.2, "y": 1.0}
_BAND_ORDER = "ugrizy"


def survey_rgb(
    bands: np.ndarray,
    names: Sequence[str] = ("g", "r", "z"),
    *,
    Q: float = 20.0,  # noqa: N803 - Lupton's symbol
    m: float = 0.03,
) -> np.ndarray:
    """Lupton asinh colour composite of calibrated survey bands, as the Legacy Survey viewer.

    Each band is multiplied by its :data:`SURVEY_SCALES` value and offset by ``m``; the mean
    intensity ``I`` is stretched with ``asinh(Q I) / sqrt(Q)`` and every band keeps its share
    of ``I`` (colours are preserved). The reddest band becomes R and the bluest B.

    Parameters
    ----------
    bands : ndarray
        ``(3, H, W)`` images in nanomaggies, in the order of ``names``.
    names : sequence of str
        Band letters (``g``, ``r``, ``z``, …).

    Returns
    -------
    ndarray
        ``(H, W, 3)`` uint8.
    """
    b = np.asarray(bands, dtype=np.float32)
    if b.ndim != 3 or b.shape[0] != 3 or len(names) != 3:
        raise ValueError(f"survey_rgb needs 3 bands, got shape {b.shape} and names {list(names)}")
    order = sorted(range(3), key=lambda i: _BAND_ORDER.index(names[i]))  # blue → red
    s = np.asarray([SURVEY_SCALES[names[i]] for i in order], dtype=np.float32)[:, None, None]
    x = np.clip(
        np.nan_to_num(b[order], nan=0.0, posinf=0.0, neginf=0.0) * s + np.float32(m), 0, None
    )
    i = x.mean(axis=0)
    i = np.where(i > 0, i, np.float32(1e-6))
    f = np.arcsinh(np.float32(Q) * i) / np.float32(math.sqrt(Q)) / i
    rgb = x[::-1] * f[None]  # red, green, blue
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8).transpose(1, 2, 0).copy()


def _band_names(header: Any, n: int) -> list[str] | None:
    """Band letters of a cube's planes from ``BANDS='grz'`` or ``BAND0..``, if all are known."""
    if header is None:
        return None
    names: list[str] = []
    bands = header.get("BANDS") if hasattr(header, "get") else None
    if isinstance(bands, str) and len(bands.strip()) == n:
        names = list(bands.strip().lower())
    else:
        for i in range(n):
            v = header.get(f"BAND{i}") if hasattr(header, "get") else None
            if not isinstance(v, str):
                return None
            names.append(v.strip().lower())
    if len(names) != n or any(b not in SURVEY_SCALES for b in names) or len(set(names)) != n:
        return None
    return names


def _render_fits(
    path: Path,
    data: np.ndarray,
    settings: RenderSettings,
    header: Any = None,
    axis: int | None = None,
) -> np.ndarray:
    # FITS row 1 is the bottom row: flip rows to show north up, as DS9 does
    if data.ndim == 2:
        return _grey_rgb(data[::-1], settings)
    if axis is None:
        axis = _band_axis(data.shape)
    planes = data[:, ::-1] if axis == 0 else np.moveaxis(data[::-1], 2, 0)
    n = planes.shape[0]
    if n == 1 and settings.bands is None:
        return _grey_rgb(planes[0], settings)
    names = _band_names(header, n) if axis == 0 else None
    if names is not None and n == 3 and settings.lupton and settings.bands is None:
        if not np.isfinite(planes).any():
            raise ImageLoadError(path, "the bands have no finite pixel values (all NaN/Inf)")
        return survey_rgb(planes, names)
    idx = _pick_bands(n, axis, settings.bands, path)
    chans = [planes[i] if i >= 0 else planes.mean(axis=0) for i in idx]
    usable = [c for c in chans if np.isfinite(c).any()]
    if not usable:
        raise ImageLoadError(path, "the selected bands have no finite pixel values (all NaN/Inf)")
    if settings.lupton:
        return _lupton_rgb(chans, settings)
    return np.stack(
        [
            _to_uint8(stretch(c, settings.stretch, settings.limits, settings.percentile))
            for c in chans
        ],
        axis=-1,
    )


def _grey_rgb(img: np.ndarray, settings: RenderSettings) -> np.ndarray:
    g = _to_uint8(stretch(img, settings.stretch, settings.limits, settings.percentile))
    return np.repeat(g[:, :, None], 3, axis=2)


def _lupton_rgb(chans: list[np.ndarray], settings: RenderSettings) -> np.ndarray:
    from astropy.visualization import make_lupton_rgb

    lows = []
    clean = []
    for c in chans:
        values = _finite_sample(c)
        lo = _limits(values, settings.limits, settings.percentile)[0] if values.size else 0.0
        lows.append(lo)
        clean.append(np.nan_to_num(c, nan=lo, posinf=lo, neginf=lo))
    intensity = sum(c - lo for c, lo in zip(clean, lows, strict=True)) / np.float32(len(clean))
    values = _finite_sample(intensity)
    p = float(settings.percentile) if settings.limits == "percentile" else 99.5
    hi = float(np.percentile(values, p)) if values.size else 0.0
    if not (math.isfinite(hi) and hi > 0):
        hi = float(values.max()) if values.size and values.max() > 0 else 1.0
    # Lupton's mapping saturates (255) where asinh(Q I / s) = 10 asinh(Q / 10): choose the
    # softening s so that the white point ``hi`` just reaches full scale.
    q = _LUPTON_Q
    s = q * hi / math.sinh(10.0 * math.asinh(0.1 * q))
    rgb = make_lupton_rgb(clean[0], clean[1], clean[2], minimum=lows, stretch=s, Q=q)
    return np.ascontiguousarray(rgb, dtype=np.uint8)


# --------------------------------------------------------------------- Pillow


def _load_pillow(path: Path, settings: RenderSettings) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        im = Image.open(path)
    except UnidentifiedImageError:
        raise ImageLoadError(
            path, "not an image file (content is not FITS, JPEG, PNG or TIFF)"
        ) from None
    except Image.DecompressionBombError as e:
        raise ImageLoadError(path, f"decompression bomb refused ({e})") from None
    except PermissionError:
        raise ImageLoadError(path, "permission denied") from None
    except MemoryError:
        raise ImageLoadError(path, "out of memory opening image") from None
    except Exception as e:  # noqa: BLE001 - Pillow plugins raise many kinds
        if "truncat" in str(e).lower():
            raise ImageLoadError(path, f"truncated image file ({_exc_text(e)})") from None
        raise ImageLoadError(path, f"corrupt image header ({_exc_text(e)})") from None
    with im:
        w, h = im.size
        limit = Image.MAX_IMAGE_PIXELS
        if limit is not None and w * h > limit:
            raise ImageLoadError(
                path,
                f"decompression bomb refused ({w}x{h} = {w * h} pixels exceeds the limit"
                f" of {limit})",
            )
        if w <= 0 or h <= 0:
            raise ImageLoadError(path, f"image has no pixels ({w}x{h})")
        try:
            f = _bounded.reduction_factor(h, w, MAX_RENDER_SIDE)
            if f > 1 and im.format == "JPEG":
                # decode at 1/2, 1/4 or 1/8 scale (never below the size asked for)
                im.draft(None, (-(-w // f), -(-h // f)))
            dw, dh = im.size
            need = dw * dh * _pil_pixel_bytes(im.mode)
            if need > MAX_DECODE_BYTES:
                raise ImageLoadError(
                    path,
                    f"image too large to decode ({w}x{h} {im.mode} needs {need // 2**20} MB;"
                    f" limit {MAX_DECODE_BYTES // 2**20} MB)",
                )
            im.load()
            f = _bounded.reduction_factor(dh, dw, MAX_RENDER_SIDE)
            if f > 1:
                return _pil_reduced_rgb(im, f, settings)
            return _pil_to_rgb(im, settings)
        except ImageLoadError:
            raise
        except MemoryError:
            raise ImageLoadError(path, "out of memory decoding image") from None
        except Exception as e:  # noqa: BLE001
            text = str(e)
            fmt = im.format or "image"
            if "truncated" in text or isinstance(e, (EOFError, SyntaxError)) or "broken" in text:
                raise ImageLoadError(path, f"truncated or corrupt {fmt} file ({text})") from None
            raise ImageLoadError(path, f"cannot decode {fmt} file ({_exc_text(e)})") from None


def _pil_pixel_bytes(mode: str) -> int:
    """Bytes per pixel Pillow allocates for an image of ``mode``."""
    if mode in ("1", "L", "P"):
        return 1
    if mode.startswith("I;16"):
        return 2
    return 4


def _pil_reduced_rgb(im: Any, f: int, settings: RenderSettings) -> np.ndarray:
    """A loaded image reduced by ``f`` (box average, strip by strip) as RGB; transparency
    is composited over black (premultiplied alpha), as :func:`_pil_to_rgb` does."""
    mode = im.mode
    if mode in ("RGB", "L", "F", "I"):
        target = mode
    elif mode.startswith("I;16"):
        target = "I"
    elif mode in ("LA", "La"):
        target = "La"
    elif mode in ("P", "PA", "RGBA", "RGBa") or "A" in im.getbands():
        target = "RGBa"
    elif mode == "1":
        target = "L"
    else:
        target = "RGB"
    small = _bounded.reduce_pillow(im, f, target)
    if target == "RGB":
        return np.asarray(small, dtype=np.uint8)
    if target == "RGBa":
        return np.ascontiguousarray(np.asarray(small, dtype=np.uint8)[:, :, :3])
    if target in ("L", "La"):
        g = np.asarray(small.getchannel(0), dtype=np.uint8)
        return np.repeat(g[:, :, None], 3, axis=2)
    a = np.asarray(small, dtype=np.float32)
    if mode.startswith("I;16"):
        g = (a * np.float32(255.0 / 65535.0) + np.float32(0.5)).astype(np.uint8)
        return np.repeat(g[:, :, None], 3, axis=2)
    if not np.isfinite(a).any():
        raise ImageLoadError(Path(im.filename or "?"), "no finite pixel values (all NaN/Inf)")
    return _grey_rgb(a, settings)


def _pil_to_rgb(im: Any, settings: RenderSettings) -> np.ndarray:
    mode = im.mode
    if mode == "RGB":
        return np.asarray(im, dtype=np.uint8)
    if mode == "L":
        g = np.asarray(im, dtype=np.uint8)
        return np.repeat(g[:, :, None], 3, axis=2)
    if mode in ("P", "PA"):
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "La", "RGBa"):
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float32)
        out = rgba[:, :, :3] * (rgba[:, :, 3:4] * np.float32(1.0 / 255.0))  # over black
        return (out + 0.5).astype(np.uint8)
    if mode.startswith("I;16"):
        a = np.asarray(im).astype(np.float32) * np.float32(255.0 / 65535.0)
        return np.repeat((a + 0.5).astype(np.uint8)[:, :, None], 3, axis=2)
    if mode in ("I", "F"):
        # raw integer/float data (e.g. a scientific TIFF): render like FITS
        a = np.asarray(im, dtype=np.float32)
        if not np.isfinite(a).any():
            raise ImageLoadError(Path(im.filename or "?"), "no finite pixel values (all NaN/Inf)")
        return _grey_rgb(a, settings)
    if mode == "1":
        g = np.asarray(im.convert("L"), dtype=np.uint8)
        return np.repeat(g[:, :, None], 3, axis=2)
    return np.asarray(im.convert("RGB"), dtype=np.uint8)


# --------------------------------------------------------------------- public


def load_rgb(
    path: str | os.PathLike[str], settings: RenderSettings = _DEFAULT_SETTINGS
) -> np.ndarray:
    """Load any supported image file as an RGB array.

    The format is recognised from the content: FITS (plain, gzip-compressed or with
    tile-compressed HDUs) goes through astropy and is rendered with ``settings``;
    JPEG/PNG/TIFF go through Pillow (8/16-bit, grey, RGBA composited over black,
    palette) and are used as they are. Images larger than :data:`MAX_RENDER_SIDE` on
    their longer side come back reduced by an integer factor (box average while
    decoding), so that the longer side is at most :data:`MAX_RENDER_SIDE`.

    Parameters
    ----------
    path : str or Path
        The file.
    settings : RenderSettings
        How FITS data are rendered.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8, C-contiguous.

    Raises
    ------
    ImageLoadError
        For any problem with the file; its message names the file and the reason. No
        other exception type escapes.
    """
    p = Path(path)
    try:
        head, size = _sniff(p)
        if head.startswith(_FITS_MAGIC) or (head.startswith(_GZIP_MAGIC) and _is_fits_name(p)):
            data, header, plan = _load_fits(
                p, settings.hdu, size, head.startswith(_GZIP_MAGIC), settings, MAX_RENDER_SIDE
            )
            if plan is None:
                rgb = _render_fits(p, data, settings, header)
            else:
                rgb = _render_fits(p, data, plan.settings, header, plan.axis)
        elif head.startswith(_GZIP_MAGIC):
            raise ImageLoadError(p, "gzip-compressed file that is not named .fits.gz")
        else:
            rgb = _load_pillow(p, settings)
    except ImageLoadError:
        raise
    except MemoryError:
        raise ImageLoadError(p, "out of memory") from None
    except Exception as e:  # noqa: BLE001 - the contract: only ImageLoadError escapes
        log.debug("unexpected error loading %s", p, exc_info=True)
        raise ImageLoadError(p, f"cannot load image ({_exc_text(e)})") from None
    return np.ascontiguousarray(rgb, dtype=np.uint8)


def thumbnail(rgb: np.ndarray, size: int = 128) -> np.ndarray:
    """Resize an image so that its longer side is ``size`` pixels, keeping the aspect.

    Parameters
    ----------
    rgb : numpy.ndarray
        ``(H, W, 3)`` (or ``(H, W)`` grey) uint8.
    size : int
        Length of the longer side of the result (images are scaled up or down).

    Returns
    -------
    numpy.ndarray
        ``(h, w, 3)`` uint8 with ``max(h, w) == size``.
    """
    from PIL import Image

    if size < 1:
        raise ValueError(f"thumbnail size must be >= 1, got {size}")
    a = np.asarray(rgb)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"expected an (H, W, 3) image, got shape {a.shape}")
    a = np.ascontiguousarray(a[:, :, :3], dtype=np.uint8)
    h, w = a.shape[:2]
    scale = size / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    if (nh, nw) == (h, w):
        return a.copy()
    resample = Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC
    return np.asarray(Image.fromarray(a).resize((nw, nh), resample), dtype=np.uint8)


_STRUCTURAL = {"", "SIMPLE", "EXTEND", "BITPIX", "NAXIS", "PCOUNT", "GCOUNT", "END"}


def _header_dict(header: Any, base: Mapping[str, object] | None = None) -> dict[str, object]:
    out: dict[str, object] = dict(base or {})
    notes: dict[str, list[str]] = {}
    for card in header.cards:
        key = card.keyword
        if key in ("COMMENT", "HISTORY"):
            notes.setdefault(key, []).append(str(card.value))
            continue
        value = card.value
        if type(value).__name__ == "Undefined":
            value = None
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    for key, lines in notes.items():
        out[key] = "\n".join(lines)
    return out


def _read_headers(path: Path, hdu: int | str | None) -> tuple[Any, Any]:
    """(primary header or None when it is the image's own, image header) of a FITS file;
    ``(None, None)`` for other formats."""
    head, size = _sniff(path)
    if not (head.startswith(_FITS_MAGIC) or head.startswith(_GZIP_MAGIC)):
        return None, None
    if head.startswith(_GZIP_MAGIC):
        _precheck_gzip(path, size, hdu)
    hdul = _open_fits(path, head.startswith(_GZIP_MAGIC))
    try:
        try:
            idx, h = _select_hdu(path, hdul, hdu, need_image=False)
            return (hdul[0].header.copy() if idx != 0 else None), h.header.copy()
        except ImageLoadError:
            raise
        except Exception as e:  # noqa: BLE001
            raise ImageLoadError(path, f"corrupt FITS header ({_exc_text(e)})") from None
    finally:
        try:
            hdul.close()
        except Exception:  # noqa: BLE001
            pass


def read_header(path: str | os.PathLike[str], hdu: int | str | None = None) -> dict[str, object]:
    """The FITS header of the image HDU as a plain dict (``{}`` for JPEG/PNG/TIFF).

    For an image in an extension, keywords of the primary header that the extension
    does not set are included too (the INHERIT convention). COMMENT and HISTORY cards
    are joined with newlines; undefined values are ``None``.

    Parameters
    ----------
    path : str or Path
    hdu : int, str or None
        As for :func:`load_fits_data`.

    Returns
    -------
    dict

    Raises
    ------
    ImageLoadError
        For a missing, unreadable or corrupt file or a FITS file without an image HDU.
    """
    p = Path(path)
    try:
        primary, header = _read_headers(p, hdu)
        if header is None:
            return {}
        if primary is None:
            return _header_dict(header)
        base = {
            k: v
            for k, v in _header_dict(primary).items()
            if k not in _STRUCTURAL and not re.fullmatch(r"NAXIS\d+", k)
        }
        return _header_dict(header, base=base)
    except ImageLoadError:
        raise
    except Exception as e:  # noqa: BLE001
        raise ImageLoadError(p, f"cannot read header ({_exc_text(e)})") from None


_SEXA_SPLIT = re.compile(r"[\s:hmsdHMSD°'\"]+")
_RA_DEC_KEYS = (("RA", "DEC"), ("RA_OBJ", "DEC_OBJ"), ("OBJRA", "OBJDEC"), ("RA_TARG", "DEC_TARG"))


def _parse_angle(value: object, hours: bool) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    text = str(value).strip()
    if not text:
        return None
    try:
        v = float(text)
        return v if math.isfinite(v) else None
    except ValueError:
        pass
    sign = -1.0 if text.startswith("-") else 1.0
    parts = [x for x in _SEXA_SPLIT.split(text.lstrip("+-")) if x]
    if not 1 <= len(parts) <= 3:
        return None
    try:
        nums = [float(x) for x in parts]
    except ValueError:
        return None
    v = sum(n / 60.0**i for i, n in enumerate(nums))
    low = text.lower()
    if "h" in low:
        in_hours = True
    elif "d" in low or "°" in low:
        in_hours = False
    else:  # bare sexagesimal: RA in hours, Dec in degrees (FITS convention)
        in_hours = hours and len(nums) > 1
    return sign * v * (15.0 if in_hours else 1.0)


def _radec_from_keys(*headers: Any) -> tuple[float | None, float | None]:
    for hdr in headers:
        if hdr is None:
            continue
        for kra, kdec in _RA_DEC_KEYS:
            if kra in hdr and kdec in hdr:
                ra = _parse_angle(hdr[kra], hours=True)
                dec = _parse_angle(hdr[kdec], hours=False)
                if ra is not None and dec is not None and -90.0 <= dec <= 90.0:
                    return ra % 360.0, dec
    return None, None


def _radec_from_wcs(header: Any) -> tuple[float | None, float | None]:
    import warnings

    from astropy.wcs import WCS, FITSFixedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        w = WCS(header)
        if not w.has_celestial:
            return None, None
        cel = w.celestial
        nx = int(header.get("NAXIS1", 0) or 0)
        ny = int(header.get("NAXIS2", 0) or 0)
        lon_axis, lat_axis = (w.wcs.lng, w.wcs.lat)
        # pixel centre (0-based) of the celestial axes
        naxes = [int(header.get(f"NAXIS{i + 1}", 1) or 1) for i in range(w.naxis)]
        cx = (naxes[lon_axis] - 1) / 2.0 if lon_axis < len(naxes) else (nx - 1) / 2.0
        cy = (naxes[lat_axis] - 1) / 2.0 if lat_axis < len(naxes) else (ny - 1) / 2.0
        ctype = cel.wcs.ctype[0].upper()
        radesys = (cel.wcs.radesys or "").upper()
        if ctype.startswith("RA") and radesys in ("", "ICRS", "FK5"):
            lon, lat = cel.all_pix2world([[cx, cy]], 0)[0]
        else:
            sky = cel.pixel_to_world(cx, cy).icrs
            lon, lat = sky.ra.deg, sky.dec.deg
    lon, lat = float(lon), float(lat)
    if not (math.isfinite(lon) and math.isfinite(lat)):
        return None, None
    return lon % 360.0, lat


def sky_position(path: str | os.PathLike[str]) -> tuple[float | None, float | None]:
    """RA and Dec (degrees, ICRS) of the image centre, when the file says.

    From the celestial WCS of the image HDU when it has one, else from ``RA``/``DEC``,
    ``RA_OBJ``/``DEC_OBJ``, ``OBJRA``/``OBJDEC`` or ``RA_TARG``/``DEC_TARG`` keywords of
    that HDU or of the primary header (numbers in degrees, or sexagesimal strings: RA in
    hours, Dec in degrees).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    (float or None, float or None)
        ``(None, None)`` for JPEG/PNG/TIFF, FITS without a position, and files that
        cannot be read (this function never raises for a bad file; it logs at debug).
    """
    p = Path(path)
    try:
        primary, header = _read_headers(p, None)
    except ImageLoadError as e:
        log.debug("sky_position: %s", e)
        return None, None
    except Exception as e:  # noqa: BLE001
        log.debug("sky_position: %s: %s", p, e)
        return None, None
    if header is None:
        return None, None
    try:
        ra, dec = _radec_from_wcs(header)
        if ra is not None:
            return ra, dec
    except Exception as e:  # noqa: BLE001 - a broken WCS falls back to the keywords
        log.debug("sky_position: %s: bad WCS: %s", p, e)
    return _radec_from_keys(header, primary)
