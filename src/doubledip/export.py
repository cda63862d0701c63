r"""Export reconstructions as VTK image data (``.vti``) for ParaView, and Bragg CDI displacement fields.

Files are written with `pyevtk <https://github.com/pyscience-projects/pyevtk>`_
(VTK XML ImageData, raw binary appended data) as *point data* on a regular
grid: one point per voxel, spacing = the voxel size, origin such that the
array index ``N // 2`` (the centre of the pattern grid) sits at coordinate 0.

Axes: doubledip arrays are ``(Z, Y, X)`` (or ``(Y, X)``); VTK's ``x, y, z``
are doubledip's ``X, Y, Z`` (a 2D object is one slice, ``z`` of extent 1), so
ParaView shows the same picture as :mod:`doubledip.report`.

Arrays written: ``magnitude`` (float32), ``phase`` (float32, radians in
:math:`(-\pi, \pi]`), ``support`` (uint8, 1 inside), and with a Bragg vector
``displacement`` (float32, NaN outside the support), see
:func:`displacement_field`.  No VTK field data is written: pyevtk places it
inside ``<Piece>``, where VTK's XML readers do not look for it, so the voxel
size lives in the grid spacing and the Bragg vector in the command's report.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from doubledip.errors import DataError
from doubledip.postprocess import unwrap_phase

__all__ = ["displacement_field", "write_vti", "export_vti", "read_vti", "crop_to_support", "displacement_figure"]


def _as_vector(value, ndim: int, name: str) -> tuple[float, ...]:
    values = (float(value),) * ndim if np.isscalar(value) else tuple(float(v) for v in value)
    if len(values) != ndim or not all(np.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"{name} {value!r} must be one positive number or {ndim} (one per axis)")
    return values


def displacement_field(obj, bragg, *, support=None, unwrap: bool = False, sign: float = 1.0) -> np.ndarray:
    r"""Displacement projected on the Bragg vector, :math:`u_G = \varphi / |G|`.

    In Bragg CDI the reconstructed object is
    :math:`\rho(r) = |\rho(r)|\, e^{i \varphi(r)}` with
    :math:`\varphi(r) = G \cdot u(r)`, where :math:`u` is the displacement of
    the atoms from the ideal lattice and :math:`G` the Bragg vector of the
    measured reflection (Robinson & Harder, Nature Materials 8, 291 (2009)).
    Only the component along :math:`G` is measured:

    .. math:: u_G(r) = \hat G \cdot u(r) = \varphi(r) / |G|.

    Units: :math:`G` is in inverse length with the :math:`2\pi`,
    :math:`|G| = 2\pi / d_{hkl}` (e.g. Å\ :sup:`-1`), so :math:`u_G` comes in
    the reciprocal unit (Å); a phase of :math:`2\pi` is a displacement of one
    lattice spacing :math:`d_{hkl}`.

    Sign: the twin image :math:`\overline{\rho(-r)}` fits the data equally
    well and has the opposite phase, and some codes write
    :math:`\varphi = -G\cdot u` (the opposite Fourier sign); ``sign=-1``
    flips the result.  The phase is wrapped to :math:`(-\pi, \pi]`, so
    :math:`u_G` is known modulo :math:`d_{hkl}` unless ``unwrap=True``
    (:func:`doubledip.postprocess.unwrap_phase`, least squares inside the
    support).  Remove the phase ramp and set the global phase first
    (:func:`doubledip.postprocess.postprocess`): both are arbitrary.

    Parameters
    ----------
    obj : ndarray, complex
        The object.
    bragg : float or sequence of float
        :math:`G` (a vector, any number of components) or :math:`|G|`.
    support : ndarray of bool, optional
        Outside it the result is NaN.
    unwrap : bool
        Unwrap the phase inside the support first.
    sign : float
        +1 (default, :math:`\varphi = G\cdot u`) or -1.

    Returns
    -------
    ndarray, float32
    """
    obj = np.asarray(obj)
    norm = float(np.linalg.norm(np.atleast_1d(np.asarray(bragg, dtype=np.float64))))
    if not (np.isfinite(norm) and norm > 0):
        raise ValueError(f"the Bragg vector {bragg!r} must be nonzero and finite")
    if sign not in (1, -1, 1.0, -1.0):
        raise ValueError(f"sign must be +1 or -1, got {sign!r}")
    support = np.ones(obj.shape, bool) if support is None else np.asarray(support) != 0
    phase = unwrap_phase(obj, support) if unwrap else np.where(support, np.angle(obj), np.nan)
    return (sign * phase / norm).astype(np.float32)


def crop_to_support(support, *, margin: int = 4) -> tuple[slice, ...]:
    """The bounding box of ``support`` grown by ``margin`` voxels (whole array when empty)."""
    support = np.asarray(support) != 0
    if not support.any():
        return tuple(slice(0, n) for n in support.shape)
    idx = np.nonzero(support)
    return tuple(slice(max(int(i.min()) - margin, 0), min(int(i.max()) + margin + 1, n))
                 for i, n in zip(idx, support.shape))


def _to_vtk(array: np.ndarray) -> np.ndarray:
    """``(Z, Y, X)`` or ``(Y, X)`` C order -> VTK ``(x, y, z)`` Fortran order (a view, no copy)."""
    array = np.ascontiguousarray(array)
    if array.ndim == 2:
        array = array[None]
    return array.T


def write_vti(path, point_data: dict[str, np.ndarray], *, spacing=1.0, origin=None) -> Path:
    """Write arrays of one 2D/3D grid as VTK ImageData point data, atomically.

    ``spacing`` and ``origin`` are given in doubledip axis order (``(z, y, x)``
    or ``(y, x)``); the default origin puts index ``N // 2`` at 0.  pyevtk
    writes ``<base>.vti`` itself, so the file is written into a temporary
    folder beside ``path`` and renamed on success: no half-written file is
    ever left at ``path``.

    Raises
    ------
    DataError
        ``path`` does not end in ``.vti``, the folder is missing or not
        writable, or the write fails.
    """
    from pyevtk.hl import imageToVTK

    path = Path(path)
    if path.suffix.lower() != ".vti":
        raise DataError(path, f"VTK image data files end in .vti, not '{path.suffix or '(none)'}'",
                        "name the output file.vti")
    folder = path.parent
    if not folder.is_dir():
        raise DataError(path, f"output folder '{folder}' does not exist", "create it or choose another path")
    arrays = {name: np.asarray(a) for name, a in point_data.items()}
    shapes = {a.shape for a in arrays.values()}
    if len(shapes) != 1:
        raise ValueError(f"all arrays must have one shape, got {sorted(shapes)}")
    shape = shapes.pop()
    if len(shape) not in (2, 3):
        raise ValueError(f"arrays must be 2D or 3D, got shape {shape}")
    spacing = _as_vector(spacing, len(shape), "voxel size")
    if origin is None:
        origin = tuple(-(n // 2) * s for n, s in zip(shape, spacing))
    if len(shape) == 2:
        spacing, origin = (1.0,) + tuple(spacing), (0.0,) + tuple(origin)
    try:
        tmpdir = tempfile.mkdtemp(prefix=f".{path.name}.", dir=folder)
    except OSError as err:
        raise DataError(path, f"cannot write in '{folder}' ({err.strerror or err})",
                        "choose a writable folder") from None
    try:
        written = imageToVTK(os.path.join(tmpdir, "image"), origin=tuple(float(o) for o in origin[::-1]),
                             spacing=tuple(float(s) for s in spacing[::-1]),
                             pointData={k: _to_vtk(v) for k, v in arrays.items()})
        os.chmod(written, 0o666 & ~_umask())
        os.replace(written, path)
    except OSError as err:
        raise DataError(path, f"cannot write ({err.strerror or err})", "check the disk space and permissions") from None
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmpdir)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def export_vti(path, obj, *, support=None, voxel_size=1.0, bragg=None, unwrap: bool = False, sign: float = 1.0,
               crop: int | None = None) -> Path:
    """Write an object (2D or 3D) as ``.vti`` with magnitude, phase, support (and displacement).

    Parameters
    ----------
    path : str or Path
        Output file, ``*.vti``.
    obj : ndarray, complex
        The object (post-process it first if wanted).
    support : ndarray of bool, optional
        Default: everywhere.
    voxel_size : float or sequence of float
        Grid spacing (one value, or one per axis in ``(z, y, x)`` order), in
        the unit you want ParaView to show (e.g. nm).
    bragg : sequence of float, optional
        Bragg vector ``(qx, qy, qz)`` (or ``|G|``) in inverse Å, :math:`2\\pi/d`
        convention; adds ``displacement`` in Å (:func:`displacement_field`).
    unwrap, sign
        For :func:`displacement_field`.
    crop : int, optional
        Keep only the support's bounding box grown by this many voxels; the
        origin keeps the coordinates of the full grid.
    """
    obj = np.asarray(obj)
    support = np.ones(obj.shape, bool) if support is None else np.asarray(support) != 0
    if support.shape != obj.shape:
        raise ValueError(f"support shape {support.shape} != object shape {obj.shape}")
    spacing = _as_vector(voxel_size, obj.ndim, "voxel size")
    arrays = {
        "magnitude": np.abs(obj).astype(np.float32),
        "phase": np.angle(obj).astype(np.float32),
        "support": support.astype(np.uint8),
    }
    if bragg is not None:
        arrays["displacement"] = displacement_field(obj, bragg, support=support, unwrap=unwrap, sign=sign)
    window = crop_to_support(support, margin=crop) if crop is not None else tuple(slice(0, n) for n in obj.shape)
    origin = tuple((w.start - n // 2) * s for w, n, s in zip(window, obj.shape, spacing))
    arrays = {k: a[window] for k, a in arrays.items()}
    return write_vti(path, arrays, spacing=spacing, origin=origin)


_ARRAY = re.compile(rb'<DataArray[^>]*?Name="(?P<name>[^"]+)"[^>]*?type="(?P<type>\w+)"[^>]*?offset="(?P<offset>\d+)"')
_VTK_TYPES = {b"Float32": "<f4", b"Float64": "<f8", b"UInt8": "<u1", b"Int8": "<i1", b"Int32": "<i4",
              b"UInt32": "<u4", b"Int64": "<i8", b"UInt64": "<u8", b"Int16": "<i2", b"UInt16": "<u2"}


def read_vti(path) -> dict:
    """Read back a ``.vti`` written by :func:`write_vti` (raw appended data, little endian, UInt64 headers).

    A minimal reader for checks and tests, not a general VTK reader.

    Returns
    -------
    dict
        ``extent`` (6 ints), ``origin``, ``spacing`` (VTK x, y, z order), and
        ``arrays``: name -> ndarray in doubledip order (``(Z, Y, X)``, or
        ``(Y, X)`` for a single slice).
    """
    raw = Path(path).read_bytes()
    marker = raw.index(b'<AppendedData encoding="raw">')
    header, body = raw[:marker], raw[raw.index(b"_", marker) + 1:]
    if b'byte_order="LittleEndian"' not in header or b'header_type="UInt64"' not in header:
        raise ValueError(f"{path}: not a little-endian UInt64-header VTK file")

    def attribute(name):
        return re.search(rb'<ImageData[^>]*?' + name.encode() + rb'="([^"]*)"', header).group(1).split()

    extent = [int(v) for v in attribute("WholeExtent")]
    dims = [extent[2 * k + 1] - extent[2 * k] + 1 for k in range(3)]
    arrays = {}
    for match in _ARRAY.finditer(header):
        offset = int(match["offset"])
        size = int(np.frombuffer(body[offset:offset + 8], "<u8")[0])
        values = np.frombuffer(body[offset + 8:offset + 8 + size], _VTK_TYPES[match["type"]])
        grid = values.reshape(dims[::-1])  # Fortran (x, y, z) order read as C (z, y, x)
        arrays[match["name"].decode()] = grid[0].copy() if dims[2] == 1 else grid.copy()
    return {
        "extent": extent,
        "origin": [float(v) for v in attribute("Origin")],
        "spacing": [float(v) for v in attribute("Spacing")],
        "arrays": arrays,
    }


def displacement_figure(displacement, *, title: str = "", unit: str = "Å"):
    """Central slices (3D) or the image (2D) of a displacement field, cropped to where it is finite
    (the support); returns a matplotlib Figure."""
    from matplotlib.figure import Figure

    u = np.asarray(displacement, np.float64)
    u = u[crop_to_support(np.isfinite(u), margin=2)]
    if u.ndim == 2:
        views = [("u_G", u)]
    else:
        z, y, x = (n // 2 for n in u.shape)
        views = [("z slice", u[z]), ("y slice", u[:, y]), ("x slice", u[:, :, x])]
    finite = u[np.isfinite(u)]
    vmax = float(np.max(np.abs(finite))) if finite.size else 1.0
    fig = Figure(figsize=(4 * len(views) + 1, 4), layout="constrained")
    for k, (name, view) in enumerate(views):
        ax = fig.add_subplot(1, len(views), k + 1)
        im = ax.imshow(view, cmap="RdBu_r", vmin=-vmax, vmax=vmax, origin="upper")
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=fig.axes, shrink=0.8, label=f"displacement along G ({unit})")
    fig.suptitle(title or "displacement projected on the Bragg vector")
    return fig
