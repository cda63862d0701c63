"""Reading and writing images for deblurring: float32 in [0, 1], ``(H, W)`` gray or ``(H, W, 3)`` colour.

Readers: ``.png``, ``.jpg``/``.jpeg``, ``.tif``/``.tiff``, ``.npy``, a sample of
scikit-image written ``skimage:NAME`` (``skimage:camera``; ``skimage:motorcycle_left`` is
the left view of its stereo pair) and one of matplotlib's sample data written ``mpl:NAME``
(``grace_hopper``, the MRI slice ``s1045`` and the terrain model ``jacksboro_fault_dem``:
gray, scaled to [0, 1] by their own range, since the last two have no fixed one), all
shipped with the packages, no download.  Integer images are scaled by their type's maximum, float images are
taken as they are (values outside [0, 1] are kept: a noisy observation may hold
them).  An alpha channel is dropped; a colour image whose channels are equal
becomes gray.  Writers: ``.png`` (16-bit gray, 8-bit colour), ``.tif``/``.tiff`` (float32),
``.npy`` (float32), all atomic.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from doubledip.errors import DataError

__all__ = ["read_image", "write_image", "to_display", "READ_SUFFIXES", "WRITE_SUFFIXES", "SAMPLES",
           "MATPLOTLIB_SAMPLES"]

READ_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy")
WRITE_SUFFIXES = (".png", ".tif", ".tiff", ".npy")
SAMPLES = ("camera", "astronaut", "coins", "moon", "text", "cell", "clock", "coffee", "chelsea", "brick",
           "grass", "gravel", "page", "rocket", "immunohistochemistry", "microaneurysms", "retina",
           "hubble_deep_field", "shepp_logan_phantom", "motorcycle_left")
MATPLOTLIB_SAMPLES = ("grace_hopper", "s1045", "jacksboro_fault_dem")


def _from_array(array: np.ndarray, label: str, min_side: int = 4) -> np.ndarray:
    a = np.asarray(array)
    if a.dtype == bool:
        a = a.astype(np.float32)
    elif np.issubdtype(a.dtype, np.integer):
        a = a.astype(np.float64) / float(np.iinfo(a.dtype).max)
    elif not np.issubdtype(a.dtype, np.floating):
        raise DataError(label, f"holds {a.dtype} values, not an image", "give a gray or colour image")
    a = np.squeeze(a)
    if a.ndim == 3 and a.shape[0] in (3, 4) and a.shape[-1] not in (3, 4):
        a = np.moveaxis(a, 0, -1)
    if a.ndim == 3 and a.shape[-1] == 4:
        a = a[..., :3]
    if a.ndim == 3 and a.shape[-1] == 2:
        a = a[..., 0]
    if a.ndim == 3 and a.shape[-1] == 3 and np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 0], a[..., 2]):
        a = a[..., 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[-1] == 3)):
        raise DataError(label, f"has shape {'x'.join(map(str, np.shape(array)))}, not an image",
                        "give a 2D gray image (H, W) or a colour image (H, W, 3)")
    if min(a.shape[:2]) < min_side:
        raise DataError(label, f"is only {a.shape[0]}x{a.shape[1]} pixels",
                        f"give an image of at least {min_side}x{min_side} pixels")
    if not np.all(np.isfinite(a)):
        raise DataError(label, "holds NaN or Inf values", "replace them (e.g. by 0) before deblurring")
    return np.ascontiguousarray(a, dtype=np.float32)


def _skimage_sample(name: str) -> np.ndarray:
    import skimage.data

    return skimage.data.stereo_motorcycle()[0] if name == "motorcycle_left" else getattr(skimage.data, name)()


def _matplotlib_sample(name: str) -> np.ndarray:
    """One of matplotlib's sample data, gray (colour averaged), scaled to [0, 1] by its own range."""
    from matplotlib import cbook

    if name == "grace_hopper":
        import matplotlib.pyplot as plt

        image = plt.imread(cbook.get_sample_data("grace_hopper.jpg")).astype(np.float64).mean(axis=-1)
    elif name == "s1045":
        with cbook.get_sample_data("s1045.ima.gz") as handle:
            image = np.frombuffer(handle.read(), np.uint16).reshape(256, 256).astype(np.float64)
    else:
        image = np.asarray(cbook.get_sample_data("jacksboro_fault_dem.npz")["elevation"], dtype=np.float64)
    lo, hi = image.min(), image.max()
    return (image - lo) / (hi - lo)


def read_image(spec, *, min_side: int = 4) -> np.ndarray:
    """Read an image file (or ``skimage:NAME``, ``mpl:NAME``) as float32 ``(H, W)`` or ``(H, W, 3)`` of at least ``min_side`` pixels.

    Raises
    ------
    DataError
        Missing file, unknown format, unreadable content or not an image; one line.
    """
    text = str(spec)
    if text.startswith("skimage:"):
        name = text.split(":", 1)[1]
        if name not in SAMPLES:
            raise DataError(text, f"unknown scikit-image sample '{name}'", f"use one of {', '.join(SAMPLES)}")
        return _from_array(_skimage_sample(name), text)
    if text.startswith("mpl:"):
        name = text.split(":", 1)[1]
        if name not in MATPLOTLIB_SAMPLES:
            raise DataError(text, f"unknown matplotlib sample '{name}'", f"use one of {', '.join(MATPLOTLIB_SAMPLES)}")
        return _from_array(_matplotlib_sample(name), text)
    path = Path(text)
    suffix = path.suffix.lower()
    if suffix not in READ_SUFFIXES:
        raise DataError(path, f"unknown image format '{path.suffix or '(no suffix)'}'",
                        f"use one of {', '.join(READ_SUFFIXES)}")
    if not path.is_file():
        raise DataError(path, "no such file", "check the path")
    try:
        if suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        elif suffix in (".tif", ".tiff"):
            import tifffile

            array = tifffile.imread(path)
        else:
            import imageio.v3 as iio

            array = iio.imread(path)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same user problem
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(path, f"cannot be read as an image ({reason[:120]})",
                        "check that the file is a complete image of its suffix") from None
    return _from_array(array, str(path), min_side)


def to_display(image, *, normalise: bool = False) -> np.ndarray:
    """Clip to [0, 1] (or, with ``normalise``, scale the maximum to 1) for an integer image file."""
    a = np.asarray(image, dtype=np.float64)
    if normalise:
        peak = a.max()
        a = a / peak if peak > 0 else a
    return np.clip(a, 0.0, 1.0)


def write_image(path, image, *, normalise: bool = False) -> None:
    """Write ``image`` as ``.png`` (16-bit gray / 8-bit colour, clipped to [0, 1]), ``.tif``/``.tiff`` or ``.npy`` (float32, as is).

    ``normalise=True`` scales a PNG so its maximum is white (for kernels).

    Raises
    ------
    DataError
        Unknown suffix, missing folder or a failed write (nothing is left half-written).
    """
    from doubledip.io import atomic_output

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITE_SUFFIXES:
        raise DataError(path, f"cannot write an image as '{path.suffix or '(no suffix)'}'",
                        f"use one of {', '.join(WRITE_SUFFIXES)}")
    array = np.asarray(image, dtype=np.float32)
    try:
        with atomic_output(path) as tmp:
            if suffix == ".npy":
                with open(tmp, "wb") as fh:
                    np.save(fh, array)
            elif suffix in (".tif", ".tiff"):
                import tifffile

                tifffile.imwrite(tmp, array, photometric="rgb" if array.ndim == 3 else "minisblack")
            else:
                import imageio.v3 as iio

                scaled = to_display(array, normalise=normalise)
                # Pillow writes 16-bit gray but only 8-bit colour PNGs
                data = (np.round(scaled * 65535).astype(np.uint16) if array.ndim == 2
                        else np.round(scaled * 255).astype(np.uint8))
                iio.imwrite(tmp, data, extension=".png")
    except OSError as err:
        raise DataError(path, f"cannot write ({type(err).__name__}: {err})",
                        "check free disk space and permissions") from None
