from __future__ import annotations

import gzip
import os
import pickle
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from helpers import galaxy_array, write_fits, write_jpeg
from PIL import Image

from galaxy_explorer.core import imaging
from galaxy_explorer.core.imaging import (
    ImageLoadError,
    RenderSettings,
    is_image_path,
    load_fits_data,
    load_rgb,
    read_header,
    sky_position,
    stretch,
    thumbnail,
    zscale_limits,
)

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def assert_rgb(a: np.ndarray, shape: tuple[int, int] | None = None) -> None:
    assert isinstance(a, np.ndarray)
    assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3
    assert a.flags.c_contiguous
    if shape is not None:
        assert a.shape[:2] == shape


def is_grey(a: np.ndarray) -> bool:
    return bool((a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all())


def load_error(path, **kw) -> ImageLoadError:
    with pytest.raises(ImageLoadError) as info:
        load_rgb(path, **kw)
    err = info.value
    assert str(err).startswith(f"{Path(path)}: ")
    assert err.path == Path(path)
    assert err.reason and "\n" not in str(err)
    return err


# --------------------------------------------------------------- FITS: good input


def test_fits_2d_float(tmp_path):
    p = write_fits(tmp_path / "g.fits", galaxy_array(40))
    rgb = load_rgb(p)
    assert_rgb(rgb, (40, 40))
    assert is_grey(rgb)
    assert rgb.max() > 200 and rgb.min() < 30


def test_fits_rows_flipped_like_ds9(tmp_path):
    data = np.zeros((20, 30), np.float32)
    data[0, :] = 100.0  # FITS row 1 = bottom of the displayed image
    rgb = load_rgb(
        write_fits(tmp_path / "f.fits", data), RenderSettings(stretch="linear", limits="minmax")
    )
    assert (rgb[-1, :, 0] == 255).all() and (rgb[0, :, 0] == 0).all()


def test_non_rectangular_shape_kept(tmp_path):
    rgb = load_rgb(write_fits(tmp_path / "r.fits", galaxy_array(60)[:, :25]))
    assert_rgb(rgb, (60, 25))


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.int64, np.float32, np.float64])
def test_fits_dtypes(tmp_path, dtype):
    data = (galaxy_array(32) / 10).clip(0, 100).astype(dtype)
    p = write_fits(tmp_path / "d.fits", data)
    raw, header = load_fits_data(p)
    assert raw.dtype == np.float32 and raw.dtype.isnative
    np.testing.assert_allclose(raw, data.astype(np.float32))
    assert_rgb(load_rgb(p), (32, 32))


def test_fits_bscale_bzero(tmp_path):
    data = galaxy_array(32)
    hdu = fits.PrimaryHDU(data.copy())
    hdu.scale("int16", bscale=0.5, bzero=300.0)
    hdu.writeto(tmp_path / "s.fits")
    assert fits.getheader(tmp_path / "s.fits")["BITPIX"] == 16
    raw, header = load_fits_data(tmp_path / "s.fits")
    assert raw.dtype == np.float32
    np.testing.assert_allclose(raw, data, atol=0.5)
    assert_rgb(load_rgb(tmp_path / "s.fits"))


def test_fits_uint16_via_bzero(tmp_path):
    data = np.arange(40000, 40000 + 16 * 16, dtype=np.uint16).reshape(16, 16)
    fits.PrimaryHDU(data).writeto(tmp_path / "u.fits")
    raw, _ = load_fits_data(tmp_path / "u.fits")
    np.testing.assert_array_equal(raw, data.astype(np.float32))


def test_fits_integer_blank_becomes_nan(tmp_path):
    data = np.full((8, 8), 5, np.int16)
    data[0, 0] = -999
    hdu = fits.PrimaryHDU(data)
    hdu.header["BLANK"] = -999
    hdu.writeto(tmp_path / "b.fits")
    raw, _ = load_fits_data(tmp_path / "b.fits")
    assert np.isnan(raw[0, 0]) and np.isfinite(raw[1:, :]).all()


def test_fits_nan_and_inf_handled(tmp_path):
    data = galaxy_array(32)
    data[:4] = np.nan
    data[10, 10] = np.inf
    data[11, 11] = -np.inf
    for st in imaging.STRETCHES:
        for lim in imaging.LIMITS:
            rgb = load_rgb(
                write_fits(tmp_path / "n.fits", data), RenderSettings(stretch=st, limits=lim)
            )
            assert_rgb(rgb, (32, 32))
            assert (rgb[-4:] == 0).all()  # NaN rows (flipped to the bottom) are black


def test_stretch_settings_change_rendering(tmp_path):
    p = write_fits(tmp_path / "g.fits", galaxy_array(32))
    outs = {st: load_rgb(p, RenderSettings(stretch=st)) for st in imaging.STRETCHES}
    means = {st: float(o.mean()) for st, o in outs.items()}
    assert means["linear"] < means["sqrt"] < means["log"]
    assert len({o.tobytes() for o in outs.values()}) == len(outs)


def test_cube_band_first_three_bands_is_colour(tmp_path):
    g = galaxy_array(32)
    cube = np.stack([g * 0.2, g * 0.5, g * 1.0])  # g, r, i: reddest last
    rgb = load_rgb(write_fits(tmp_path / "c.fits", cube))
    assert_rgb(rgb, (32, 32))
    assert not is_grey(rgb)
    r, gch, b = (rgb[..., i].astype(float).sum() for i in range(3))
    assert r > gch > b  # the last (reddest) plane is red


def test_cube_band_last_is_rgb_order(tmp_path):
    g = galaxy_array(32)
    cube = np.stack([g * 1.0, g * 0.5, g * 0.2], axis=-1)  # (H, W, 3) saved from a picture
    rgb = load_rgb(write_fits(tmp_path / "c.fits", cube))
    assert_rgb(rgb, (32, 32))
    r, gch, b = (rgb[..., i].astype(float).sum() for i in range(3))
    assert r > gch > b


def test_cube_per_band_stretch(tmp_path):
    g = galaxy_array(32)
    cube = np.stack([g * 0.2, g * 0.5, g * 1.0])
    rgb = load_rgb(
        write_fits(tmp_path / "c.fits", cube), RenderSettings(lupton=False, stretch="linear")
    )
    assert_rgb(rgb, (32, 32))
    # each band stretched on its own: scaled copies look the same
    assert np.abs(rgb[..., 0].astype(int) - rgb[..., 2].astype(int)).max() <= 1


def test_cube_many_bands_and_explicit_bands(tmp_path):
    planes = [galaxy_array(24, seed=i) * (i + 1) for i in range(5)]
    p = write_fits(tmp_path / "c5.fits", np.stack(planes))
    assert_rgb(load_rgb(p), (24, 24))
    a = load_rgb(p, RenderSettings(bands=(0, 1, 2)))
    b = load_rgb(p, RenderSettings(bands=(4, 3, 2)))
    assert a.tobytes() != b.tobytes()
    err = load_error(p, settings=RenderSettings(bands=(0, 1, 7)))
    assert "band" in err.reason and "5" in err.reason


def test_cube_single_band_and_degenerate_axes(tmp_path):
    g = galaxy_array(24)
    one = load_rgb(write_fits(tmp_path / "one.fits", g[None]))
    four = load_rgb(write_fits(tmp_path / "four.fits", g[None, None]))
    flat = load_rgb(write_fits(tmp_path / "flat.fits", g))
    assert_rgb(one, (24, 24))
    np.testing.assert_array_equal(one, flat)
    np.testing.assert_array_equal(four, flat)


def test_cube_two_bands(tmp_path):
    g = galaxy_array(24)
    assert_rgb(load_rgb(write_fits(tmp_path / "two.fits", np.stack([g, g * 2]))), (24, 24))


def test_first_image_extension_when_primary_empty(tmp_path):
    g = galaxy_array(24)
    fits.HDUList(
        [
            fits.PrimaryHDU(header=fits.Header({"RA": 10.0, "DEC": -5.0, "TELESCOP": "X"})),
            fits.BinTableHDU.from_columns(
                [fits.Column(name="a", format="E", array=np.arange(3.0))]
            ),
            fits.ImageHDU(g, name="SCI"),
            fits.ImageHDU(g[:10, :10], name="OTHER"),
        ]
    ).writeto(tmp_path / "mef.fits")
    assert_rgb(load_rgb(tmp_path / "mef.fits"), (24, 24))
    assert_rgb(load_rgb(tmp_path / "mef.fits", RenderSettings(hdu=3)), (10, 10))
    assert_rgb(load_rgb(tmp_path / "mef.fits", RenderSettings(hdu="OTHER")), (10, 10))
    data, header = load_fits_data(tmp_path / "mef.fits", hdu="sci")
    assert data.shape == (24, 24) and header["EXTNAME"] == "SCI"
    assert "no HDU" in load_error(tmp_path / "mef.fits", settings=RenderSettings(hdu=9)).reason
    assert "no HDU" in load_error(tmp_path / "mef.fits", settings=RenderSettings(hdu="NOPE")).reason
    assert (
        "not an image" in load_error(tmp_path / "mef.fits", settings=RenderSettings(hdu=1)).reason
    )
    assert (
        "no image data" in load_error(tmp_path / "mef.fits", settings=RenderSettings(hdu=0)).reason
    )


def test_tile_compressed_fits_fz(tmp_path):
    g = galaxy_array(40)
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(g, compression_type="RICE_1")]).writeto(
        tmp_path / "c.fits.fz"
    )
    data, header = load_fits_data(tmp_path / "c.fits.fz")
    assert data.shape == (40, 40)
    np.testing.assert_allclose(data, g, atol=np.ptp(g) / 50)
    assert_rgb(load_rgb(tmp_path / "c.fits.fz"), (40, 40))


def test_gzipped_fits(tmp_path):
    g = galaxy_array(40)
    raw = (write_fits(tmp_path / "plain.fits", g)).read_bytes()
    (tmp_path / "z.fits.gz").write_bytes(gzip.compress(raw))
    np.testing.assert_array_equal(
        load_rgb(tmp_path / "z.fits.gz"), load_rgb(tmp_path / "plain.fits")
    )


def test_load_fits_data_rejects_non_fits(tmp_path):
    p = write_jpeg(tmp_path / "j.jpg").rename(tmp_path / "j.fits")
    with pytest.raises(ImageLoadError, match="not a FITS file"):
        load_fits_data(p)


def test_odd_fits_goes_to_astropy_not_pillow(tmp_path):
    (tmp_path / "odd.fits").write_bytes(b"SIMPLE = T" + b" " * 3000)
    err = load_error(tmp_path / "odd.fits")
    assert "FITS" in err.reason


def test_format_sniffed_from_content(tmp_path):
    # a PNG that is named .fits, and a FITS named .png: the content decides
    write_jpeg(tmp_path / "x.png")
    (tmp_path / "png.fits").write_bytes((tmp_path / "x.png").read_bytes())
    assert_rgb(load_rgb(tmp_path / "png.fits"), (48, 48))
    write_fits(tmp_path / "f.fits", galaxy_array(20))
    (tmp_path / "fits.png").write_bytes((tmp_path / "f.fits").read_bytes())
    assert_rgb(load_rgb(tmp_path / "fits.png"), (20, 20))


# --------------------------------------------------------------- Pillow formats


def _gal8(size=32):
    g = galaxy_array(size)
    return (255 * (g - g.min()) / np.ptp(g)).astype(np.uint8)


@pytest.mark.parametrize(
    "name, make",
    [
        ("rgb.jpg", lambda g: Image.fromarray(np.stack([g, g // 2, g // 3], -1))),
        ("grey.jpg", lambda g: Image.fromarray(g)),
        ("grey.png", lambda g: Image.fromarray(g)),
        ("rgba.png", lambda g: Image.fromarray(np.stack([g, g, g, np.full_like(g, 128)], -1))),
        ("la.png", lambda g: Image.fromarray(np.stack([g, np.full_like(g, 255)], -1), "LA")),
        ("pal.png", lambda g: Image.fromarray(np.stack([g, g, g], -1)).convert("P")),
        ("bw.png", lambda g: Image.fromarray(g).convert("1")),
        ("g16.png", lambda g: Image.fromarray(g.astype(np.uint16) * 257)),
        ("g16.tif", lambda g: Image.fromarray(g.astype(np.uint16) * 257)),
        ("rgb.tiff", lambda g: Image.fromarray(np.stack([g, g, g], -1))),
        ("f32.tif", lambda g: Image.fromarray(g.astype(np.float32) * 3.5 - 7)),
        ("i32.tif", lambda g: Image.fromarray(g.astype(np.int32) * 1000)),
        ("cmyk.jpg", lambda g: Image.fromarray(np.stack([g, g, g], -1)).convert("CMYK")),
    ],
)
def test_pillow_modes(tmp_path, name, make):
    g = _gal8(32)
    make(g).save(tmp_path / name)
    rgb = load_rgb(tmp_path / name)
    assert_rgb(rgb, (32, 32))
    assert rgb.max() > 100  # not blank


def test_16bit_png_scaled_not_clipped(tmp_path):
    g = _gal8(16)
    Image.fromarray(g.astype(np.uint16) * 257).save(tmp_path / "g16.png")
    rgb = load_rgb(tmp_path / "g16.png")
    np.testing.assert_allclose(rgb[..., 0].astype(int), g.astype(int), atol=1)


def test_rgba_composited_over_black(tmp_path):
    a = np.zeros((4, 4, 4), np.uint8)
    a[..., :3] = 200
    a[0, 0, 3] = 255
    Image.fromarray(a, "RGBA").save(tmp_path / "a.png")
    rgb = load_rgb(tmp_path / "a.png")
    assert (rgb[0, 0] == 200).all() and (rgb[1, 1] == 0).all()


def test_jpeg_roundtrip_matches_pillow(tmp_path):
    p = write_jpeg(tmp_path / "j.jpg")
    np.testing.assert_array_equal(load_rgb(p), np.asarray(Image.open(p).convert("RGB")))


# --------------------------------------------------------------- bad input


def test_error_type_format_and_pickle():
    e = ImageLoadError(Path("/x/y.fits"), "truncated FITS file")
    assert str(e) == "/x/y.fits: truncated FITS file"
    assert e.path == Path("/x/y.fits") and e.reason == "truncated FITS file"
    e2 = pickle.loads(pickle.dumps(e))
    assert type(e2) is ImageLoadError and str(e2) == str(e) and e2.reason == e.reason


def test_missing_path(tmp_path):
    assert "no such file" in load_error(tmp_path / "nope.fits").reason


def test_directory(tmp_path):
    (tmp_path / "d.fits").mkdir()
    assert "directory" in load_error(tmp_path / "d.fits").reason


@pytest.mark.parametrize("name", ["z.fits", "z.jpg", "z.png", "z.fits.gz", "z.fits.fz", "z.tif"])
def test_zero_byte(tmp_path, name):
    (tmp_path / name).write_bytes(b"")
    assert "empty" in load_error(tmp_path / name).reason


@pytest.mark.parametrize("name", ["t.fits", "t.jpg", "t.png", "t.tiff", "t.fts"])
def test_text_with_image_extension(tmp_path, name):
    (tmp_path / name).write_text("hello, this is not an image\n" * 20)
    assert "not an image" in load_error(tmp_path / name).reason


def test_random_bytes_png(tmp_path):
    (tmp_path / "r.png").write_bytes(np.random.default_rng(0).bytes(5000))
    assert "not an image" in load_error(tmp_path / "r.png").reason


def test_truncated_fits_data(tmp_path):
    raw = write_fits(tmp_path / "ok.fits", galaxy_array(100)).read_bytes()
    (tmp_path / "t.fits").write_bytes(raw[: len(raw) // 2])
    assert "truncated" in load_error(tmp_path / "t.fits").reason
    with pytest.raises(ImageLoadError, match="truncated"):
        load_fits_data(tmp_path / "t.fits")


def test_truncated_fits_header(tmp_path):
    raw = write_fits(tmp_path / "ok.fits", galaxy_array(100)).read_bytes()
    (tmp_path / "h.fits").write_bytes(raw[:1000])
    assert "corrupt" in load_error(tmp_path / "h.fits").reason


def test_truncated_fits_gz(tmp_path):
    raw = write_fits(tmp_path / "ok.fits", galaxy_array(100)).read_bytes()
    gz = gzip.compress(raw)
    (tmp_path / "t.fits.gz").write_bytes(gz[: len(gz) // 2])
    assert "truncated" in load_error(tmp_path / "t.fits.gz").reason


def test_a_failed_data_read_gets_one_specific_reason():
    """The reasons both FITS data readers give (whole and reduced) for what astropy raised."""
    p = Path("/x/a.fits")

    def reason(e, *, gz=False, info_end=None, what="image data"):
        return imaging._data_error(p, e, "HDU 1", gz, info_end, 1000, what).reason

    assert reason(MemoryError()) == "out of memory reading HDU 1"
    gz = "truncated or corrupt gzip-compressed FITS file ("
    assert reason(ValueError("bad"), gz=True).startswith(gz)
    assert reason(EOFError("short")).startswith(gz)
    assert reason(OSError("zlib: end-of-stream marker")).startswith(gz)
    assert reason(ValueError("bad"), info_end=2000) == "truncated FITS file (HDU 1 is cut short)"
    assert reason(ValueError("bad"), info_end=1000).startswith("corrupt image data in HDU 1 (")
    what = "compressed image data"
    assert reason(ValueError("bad"), what=what).startswith("corrupt compressed image data in HDU 1")


def test_corrupt_compressed_hdu(tmp_path):
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(galaxy_array(64))]).writeto(
        tmp_path / "c.fits.fz"
    )
    raw = bytearray((tmp_path / "c.fits.fz").read_bytes())
    for i in range(5760 + 200, len(raw) - 100):  # scribble over the compressed tiles
        raw[i] = (raw[i] * 7 + 13) % 256
    (tmp_path / "bad.fits.fz").write_bytes(bytes(raw))
    (tmp_path / "cut.fits.fz").write_bytes(bytes(raw[:7000]))
    load_error(tmp_path / "bad.fits.fz")  # any specific reason, but an ImageLoadError
    load_error(tmp_path / "cut.fits.fz")


def test_fits_without_image_hdu(tmp_path):
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.BinTableHDU.from_columns(
                [fits.Column(name="a", format="E", array=np.arange(3.0))]
            ),
        ]
    ).writeto(tmp_path / "tab.fits")
    err = load_error(tmp_path / "tab.fits")
    assert "no image HDU" in err.reason
    with pytest.raises(ImageLoadError, match="no image HDU"):
        read_header(tmp_path / "tab.fits")
    assert sky_position(tmp_path / "tab.fits") == (None, None)


def test_header_only_fits(tmp_path):
    fits.PrimaryHDU().writeto(tmp_path / "empty.fits")
    assert "no image HDU" in load_error(tmp_path / "empty.fits").reason


def test_one_dimensional_fits(tmp_path):
    fits.PrimaryHDU(np.arange(10.0)).writeto(tmp_path / "1d.fits")
    load_error(tmp_path / "1d.fits")


@pytest.mark.parametrize("fill", [np.nan, np.inf])
def test_all_nan(tmp_path, fill):
    p = write_fits(tmp_path / "nan.fits", np.full((16, 16), fill, np.float32))
    assert "NaN" in load_error(p).reason


def test_cube_with_all_nan_selected_bands(tmp_path):
    cube = np.full((3, 8, 8), np.nan, np.float32)
    cube[0] = 1.0
    p = write_fits(tmp_path / "c.fits", cube)
    assert "NaN" in load_error(p, settings=RenderSettings(bands=(1, 2, 2))).reason


def test_absurd_fits_dimensions_refused(tmp_path):
    hdr = fits.Header()
    hdr["SIMPLE"] = True
    hdr["BITPIX"] = 8
    hdr["NAXIS"] = 2
    hdr["NAXIS1"] = 40000  # above imaging.MAX_FITS_PIXELS (30,000 squared)
    hdr["NAXIS2"] = 40000
    (tmp_path / "big.fits").write_bytes(hdr.tostring().encode() + b"\0" * 2880)
    err = load_error(tmp_path / "big.fits")
    assert "too large" in err.reason and "40000x40000" in err.reason


def test_decompression_bomb_pillow_hard_limit(tmp_path, monkeypatch):
    p = write_jpeg(tmp_path / "b.jpg")  # 48x48 = 2304 px
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # > 2x the limit: Pillow refuses
    assert "decompression bomb" in load_error(p).reason


def test_decompression_bomb_warning_zone_is_an_error(tmp_path, monkeypatch):
    p = write_jpeg(tmp_path / "b.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # between limit and 2x: Pillow only warns
    with pytest.warns(Image.DecompressionBombWarning):
        err = load_error(p)
    assert "decompression bomb" in err.reason


def test_truncated_jpeg(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)).save(tmp_path / "ok.jpg")
    raw = (tmp_path / "ok.jpg").read_bytes()
    (tmp_path / "t.jpg").write_bytes(raw[: len(raw) // 2])
    assert "truncated" in load_error(tmp_path / "t.jpg").reason


def test_truncated_png(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)).save(tmp_path / "ok.png")
    raw = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "t.png").write_bytes(raw[: len(raw) // 2])
    assert "truncated" in load_error(tmp_path / "t.png").reason


def test_gzip_that_is_not_fits(tmp_path):
    (tmp_path / "x.fits.gz").write_bytes(gzip.compress(b"just some text\n" * 100))
    load_error(tmp_path / "x.fits.gz")
    (tmp_path / "y.png").write_bytes(gzip.compress(b"just some text\n" * 100))
    load_error(tmp_path / "y.png")


def test_unreadable_file(tmp_path, monkeypatch):
    p = write_jpeg(tmp_path / "locked.jpg")
    real_open = open

    def fake_open(file, *a, **kw):
        if Path(file) == p:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *a, **kw)

    monkeypatch.setattr("builtins.open", fake_open)
    assert "permission denied" in load_error(p).reason


def test_unexpected_errors_are_wrapped(tmp_path, monkeypatch):
    p = write_fits(tmp_path / "g.fits", galaxy_array(16))

    def boom(*a, **kw):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(imaging, "_render_fits", boom)
    err = load_error(p)
    assert "kaboom" in err.reason


# --------------------------------------------------------------- stretch & limits


@pytest.mark.parametrize("st", imaging.STRETCHES)
@pytest.mark.parametrize("lim", imaging.LIMITS)
def test_stretch_range_and_monotonic(st, lim):
    data = galaxy_array(40)
    out = stretch(data, st, lim, 99.0)
    assert out.dtype == np.float32 and out.shape == data.shape
    assert out.min() >= 0.0 and out.max() <= 1.0
    order = np.argsort(data.ravel(), kind="stable")
    assert (np.diff(out.ravel()[order]) >= -1e-6).all()


def test_stretch_formulas():
    x = np.linspace(0, 1, 11, dtype=np.float32)
    np.testing.assert_allclose(stretch(x, "linear", "minmax"), x, atol=1e-6)
    np.testing.assert_allclose(stretch(x, "sqrt", "minmax"), np.sqrt(x), atol=1e-6)
    np.testing.assert_allclose(
        stretch(x, "log", "minmax"), np.log10(1000 * x + 1) / np.log10(1001), atol=1e-6
    )
    np.testing.assert_allclose(
        stretch(x, "asinh", "minmax"), np.arcsinh(10 * x) / np.arcsinh(10), atol=1e-6
    )


def test_percentile_limits():
    data = np.arange(1001, dtype=np.float32)
    out = stretch(data, "linear", "percentile", 90.0)
    assert out[100] == 0.0 and out[900] == 1.0 and out[50] == 0.0 and out[950] == 1.0
    assert abs(out[500] - 0.5) < 1e-6


def test_stretch_constant_and_nonfinite():
    assert (stretch(np.full((4, 4), 7.0), "asinh", "percentile") == 0).all()
    assert (stretch(np.full((4, 4), np.nan), "linear", "minmax") == 0).all()
    d = np.array([[0.0, 1.0], [np.nan, np.inf]], np.float32)
    out = stretch(d, "linear", "minmax")
    assert out[1, 0] == 0.0 and out[1, 1] == 1.0 and out[0, 1] == 1.0


def test_stretch_bad_names():
    with pytest.raises(ValueError, match="stretch"):
        stretch(np.ones((2, 2)), "cubic")
    with pytest.raises(ValueError, match="limits"):
        stretch(np.ones((2, 2)), "linear", "sigma")


def test_histeq_flattens_histogram():
    data = np.random.default_rng(0).exponential(1.0, (64, 64)).astype(np.float32)
    out = stretch(data, "histeq", "minmax")
    hist, _ = np.histogram(out, bins=4, range=(0, 1))
    assert hist.min() > 0.15 * out.size


def test_zscale_limits_match_astropy():
    from astropy.visualization import ZScaleInterval

    data = galaxy_array(64)
    lo, hi = zscale_limits(data)
    exp = ZScaleInterval().get_limits(data)
    assert (lo, hi) == pytest.approx((float(exp[0]), float(exp[1])))
    data[:5] = np.nan
    lo2, hi2 = zscale_limits(data)
    assert np.isfinite([lo2, hi2]).all() and lo2 < hi2
    with pytest.raises(ValueError):
        zscale_limits(np.full(5, np.nan))


# --------------------------------------------------------------- settings, thumbnails


def test_render_settings_key_and_validation():
    a = RenderSettings()
    assert a.key() == RenderSettings().key() and isinstance(a.key(), str) and len(a.key()) < 64
    variants = [
        RenderSettings(stretch="linear"),
        RenderSettings(limits="zscale"),
        RenderSettings(percentile=99.0),
        RenderSettings(hdu=1),
        RenderSettings(hdu="SCI"),
        RenderSettings(hdu=2),
        RenderSettings(bands=(2, 1, 0)),
        RenderSettings(lupton=False),
    ]
    keys = {v.key() for v in variants} | {a.key()}
    assert len(keys) == len(variants) + 1
    assert (
        RenderSettings(limits="zscale", percentile=99).key()
        == RenderSettings(limits="zscale").key()
    )
    assert hash(a) == hash(RenderSettings())
    assert RenderSettings(hdu="sci").key() == RenderSettings(hdu="SCI").key()
    with pytest.raises(AttributeError):
        a.stretch = "log"  # type: ignore[misc]
    for bad in [
        dict(stretch="x"),
        dict(limits="x"),
        dict(percentile=10),
        dict(bands=(1, 2)),
        dict(bands=(0, -1, 2)),
        dict(hdu=1.5),
        dict(hdu=True),
    ]:
        with pytest.raises(ValueError):
            RenderSettings(**bad)
    assert RenderSettings(bands=[2, 1, 0]).bands == (2, 1, 0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "shape, size, expect",
    [
        ((100, 50), 128, (128, 64)),
        ((50, 100), 64, (32, 64)),
        ((20, 20), 128, (128, 128)),
        ((128, 128), 128, (128, 128)),
        ((1000, 3), 100, (100, 1)),
    ],
)
def test_thumbnail_keeps_aspect(shape, size, expect):
    rgb = np.random.default_rng(0).integers(0, 255, (*shape, 3), dtype=np.uint8)
    t = thumbnail(rgb, size)
    assert t.dtype == np.uint8 and t.shape == (*expect, 3)


def test_thumbnail_grey_and_bad():
    assert thumbnail(np.zeros((10, 20), np.uint8), 40).shape == (20, 40, 3)
    with pytest.raises(ValueError):
        thumbnail(np.zeros((10,), np.uint8))


def test_is_image_path():
    for name in [
        "a.fits",
        "A.FITS",
        "b.fit",
        "c.fts",
        "d.fits.gz",
        "e.FITS.FZ",
        "f.jpg",
        "g.JPEG",
        "h.png",
        "i.tif",
        "j.TIFF",
        Path("/x/y.fits"),
    ]:
        assert is_image_path(name), name
    for name in ["a.txt", "b.gz", "c.fits.bak", "d", "e.fz", "fits"]:
        assert not is_image_path(name), name


# --------------------------------------------------------------- headers & sky position


def _wcs_header(
    nx=41, ny=41, crpix=(21.0, 21.0), crval=(150.0, 2.0), ctype=("RA---TAN", "DEC--TAN")
):
    return {
        "CTYPE1": ctype[0],
        "CTYPE2": ctype[1],
        "CRPIX1": crpix[0],
        "CRPIX2": crpix[1],
        "CRVAL1": crval[0],
        "CRVAL2": crval[1],
        "CDELT1": -0.262 / 3600,
        "CDELT2": 0.262 / 3600,
        "CUNIT1": "deg",
        "CUNIT2": "deg",
    }


def test_sky_position_wcs_centre(tmp_path):
    p = write_fits(tmp_path / "w.fits", galaxy_array(41), _wcs_header())
    ra, dec = sky_position(p)
    assert ra == pytest.approx(150.0, abs=1e-9) and dec == pytest.approx(2.0, abs=1e-9)


def test_sky_position_wcs_off_centre(tmp_path):
    from astropy.wcs import WCS

    hdr = _wcs_header(crpix=(1.0, 1.0), crval=(10.0, 40.0))
    p = write_fits(tmp_path / "w.fits", galaxy_array(41), hdr)
    ra, dec = sky_position(p)
    exp = WCS(fits.getheader(p)).all_pix2world([[20.0, 20.0]], 0)[0]
    assert (ra, dec) == pytest.approx((exp[0], exp[1]), abs=1e-9)
    assert ra != pytest.approx(10.0, abs=1e-4)


def test_sky_position_galactic_wcs(tmp_path):
    hdr = _wcs_header(crval=(0.0, 0.0), ctype=("GLON-TAN", "GLAT-TAN"))
    ra, dec = sky_position(write_fits(tmp_path / "g.fits", galaxy_array(41), hdr))
    assert ra == pytest.approx(266.405, abs=0.01) and dec == pytest.approx(-28.936, abs=0.01)


def test_sky_position_cube_wcs(tmp_path):
    hdr = _wcs_header()
    hdr.update({"CTYPE3": "WAVE", "CRVAL3": 5e-7, "CDELT3": 1e-7, "CRPIX3": 1.0})
    ra, dec = sky_position(write_fits(tmp_path / "c.fits", np.stack([galaxy_array(41)] * 3), hdr))
    assert (ra, dec) == pytest.approx((150.0, 2.0), abs=1e-9)


@pytest.mark.parametrize(
    "keys, expect",
    [
        ({"RA": 150.5, "DEC": -2.25}, (150.5, -2.25)),
        ({"RA_OBJ": 10.0, "DEC_OBJ": 20.0}, (10.0, 20.0)),
        ({"OBJRA": "10:00:00.0", "OBJDEC": "-02:30:00"}, (150.0, -2.5)),
        ({"RA": "12 30 00", "DEC": "+12 30 36"}, (187.5, 12.51)),
        ({"RA": "150.25", "DEC": "2.5"}, (150.25, 2.5)),
        ({"RA": "10h00m00s", "DEC": "-00d30m00s"}, (150.0, -0.5)),
        ({"RA": "150d30m", "DEC": "-0 30 0"}, (150.5, -0.5)),
        ({}, (None, None)),
        ({"RA": "garbage", "DEC": "x"}, (None, None)),
        ({"RA": 10.0}, (None, None)),
    ],
)
def test_sky_position_header_keys(tmp_path, keys, expect):
    p = write_fits(tmp_path / "k.fits", galaxy_array(16), keys)
    got = sky_position(p)
    if expect[0] is None:
        assert got == (None, None)
    else:
        assert got == pytest.approx(expect, abs=1e-6)


def test_sky_position_keys_in_primary_of_mef(tmp_path):
    fits.HDUList(
        [
            fits.PrimaryHDU(header=fits.Header({"RA": 33.0, "DEC": -4.0})),
            fits.ImageHDU(galaxy_array(16), name="SCI"),
        ]
    ).writeto(tmp_path / "mef.fits")
    assert sky_position(tmp_path / "mef.fits") == pytest.approx((33.0, -4.0))


def test_sky_position_non_fits_and_bad(tmp_path):
    assert sky_position(write_jpeg(tmp_path / "j.jpg")) == (None, None)
    assert sky_position(tmp_path / "missing.fits") == (None, None)
    (tmp_path / "bad.fits").write_text("nope")
    assert sky_position(tmp_path / "bad.fits") == (None, None)


def test_read_header(tmp_path):
    p = write_fits(tmp_path / "h.fits", galaxy_array(16), {"OBJECT": "NGC 1", "EXPTIME": 30.0})
    h = read_header(p)
    assert isinstance(h, dict)
    assert h["OBJECT"] == "NGC 1" and h["EXPTIME"] == 30.0 and h["NAXIS1"] == 16
    assert read_header(write_jpeg(tmp_path / "j.jpg")) == {}
    with pytest.raises(ImageLoadError, match="no such file"):
        read_header(tmp_path / "missing.fits")


def test_read_header_extension_inherits_primary(tmp_path):
    ph = fits.PrimaryHDU(header=fits.Header({"TELESCOP": "Blanco", "OBJECT": "primary"}))
    ph.header["COMMENT"] = "first"
    ph.header["COMMENT"] = "second"
    fits.HDUList(
        [ph, fits.ImageHDU(galaxy_array(16), header=fits.Header({"OBJECT": "ext"}), name="SCI")]
    ).writeto(tmp_path / "m.fits")
    h = read_header(tmp_path / "m.fits")
    assert h["TELESCOP"] == "Blanco" and h["OBJECT"] == "ext" and h["EXTNAME"] == "SCI"
    assert h["XTENSION"] == "IMAGE" and "SIMPLE" not in h
    assert h["COMMENT"] == "first\nsecond"
    assert read_header(tmp_path / "m.fits", hdu=0)["OBJECT"] == "primary"


def test_read_header_compressed(tmp_path):
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.CompImageHDU(galaxy_array(24), header=fits.Header({"RA": 1.0, "DEC": 2.0})),
        ]
    ).writeto(tmp_path / "c.fits.fz")
    h = read_header(tmp_path / "c.fits.fz")
    assert h["NAXIS1"] == 24 and h["XTENSION"] == "IMAGE"
    assert sky_position(tmp_path / "c.fits.fz") == pytest.approx((1.0, 2.0))


# --------------------------------------------------------------- concurrency


def test_threaded_loading_is_consistent(tmp_path):
    paths = []
    for i in range(6):
        paths.append(write_fits(tmp_path / f"g{i}.fits", galaxy_array(32, seed=i)))
        paths.append(write_jpeg(tmp_path / f"j{i}.jpg", seed=i))
    (tmp_path / "bad.fits").write_text("not fits")
    paths.append(tmp_path / "bad.fits")

    def one(p):
        try:
            return load_rgb(p).tobytes()
        except ImageLoadError as e:
            return str(e)

    serial = [one(p) for p in paths]
    with ThreadPoolExecutor(4) as ex:
        for _ in range(3):
            assert list(ex.map(one, paths)) == serial


def test_fuzzed_files_raise_only_image_load_error(tmp_path):
    """Truncations and scribbles of every format: a result or an ImageLoadError, nothing else."""
    g = galaxy_array(40)
    write_fits(tmp_path / "src.fits", g, {"RA": 1.0, "DEC": 2.0})
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(g)]).writeto(tmp_path / "src.fits.fz")
    (tmp_path / "src.fits.gz").write_bytes(gzip.compress((tmp_path / "src.fits").read_bytes()))
    write_fits(tmp_path / "cube.fits", np.stack([g, g * 2, g * 3]))
    write_jpeg(tmp_path / "src.jpg")
    write_jpeg(tmp_path / "src.png")
    write_jpeg(tmp_path / "src.tif")
    rng = np.random.default_rng(1)
    n = 0
    for src in sorted(tmp_path.glob("*.*")):
        raw = src.read_bytes()
        suffix = "".join(src.suffixes)
        variants = [raw[: int(len(raw) * f)] for f in (0.01, 0.3, 0.7, 0.99)]
        for _ in range(4):
            b = bytearray(raw)
            for i in rng.integers(0, len(b), size=20):
                b[i] = int(rng.integers(0, 256))
            variants.append(bytes(b))
        for i, data in enumerate(variants):
            p = tmp_path / f"fuzz_{src.stem.split('.')[0]}_{i}{suffix}"
            p.write_bytes(data)
            try:
                assert_rgb(load_rgb(p))
            except ImageLoadError as e:
                assert str(e).startswith(str(p))
            sky_position(p)  # never raises
            try:
                read_header(p)
            except ImageLoadError:
                pass
            n += 1
    assert n == 7 * 8
