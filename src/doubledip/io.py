"""File input and output: patterns in, measurements and results out.

Reading
-------
:func:`read_pattern` takes a *spec*: a path, or ``file:inner`` to choose what
inside a container file to read -- ``data.h5:/entry_1/data_1/data`` (an HDF5
dataset, or a group holding ``data``), ``data.npz:counts`` (an npz array).  A
trailing ``[i]`` picks frame ``i`` of a stack: ``run.cxi:/entry_1/data_1/data[3]``.

============================  ======================================================
suffix                        what is read
============================  ======================================================
``.npz``                      array ``intensity`` (else ``data``); optional ``mask``,
                              ``object`` (ground truth), ``meta`` (JSON text)
``.npy``                      the array
``.h5`` ``.hdf5`` ``.cxi``    the first of ``/entry_1/data_1/data``,
                              ``/entry_1/instrument_1/detector_1/data``,
                              ``/entry_1/image_1/data``, the NeXus ``default``
                              signal, ``/data``, ``/intensity``, or the only 2D/3D
                              numeric dataset; mask at
                              ``/entry_1/instrument_1/detector_1/mask``,
                              ``/entry_1/data_1/mask`` or ``/mask`` (or ``mask``
                              beside a chosen dataset); truth object at
                              ``/entry_1/sample_1/truth_object``
``.tif`` ``.tiff``            the image (several pages make a 3D pattern)
``.edf``                      ESRF data format: ASCII header ``{ key = value ; }``
                              padded to 512 bytes, then raw binary data
============================  ======================================================

Leading axes of length one are dropped; a stack of frames is refused with a
hint to pick one.  Intensities become float32 and masks uint8 (nonzero =
unmeasured).  Masked pixels are free: NaN, Inf or negative values there (the
usual markers of detector gaps) are set to zero; at measured pixels they are
errors.  Every problem raises :class:`~doubledip.errors.DataError` with one
line naming the file, the problem and the fix.

Writing
-------
:func:`write_measurement` and :func:`write_result` write ``.npz`` or ``.cxi``
atomically (:func:`atomic_output`): a temporary file in the target folder,
renamed on success and removed on failure, so no half-written file remains.

File contract
-------------
Measurement ``.npz``: ``intensity`` float32 (detector convention, zero
frequency at index ``N // 2``), ``mask`` uint8, ``object`` complex64
(simulations only), ``meta`` JSON text.

Result ``.npz``: ``object`` complex64 on the pattern grid, ``support`` bool,
``history`` (main loss per iteration) and ``history_<name>`` (other curves),
``config`` JSON text (method, options, seed), ``seed``, ``timings`` JSON text.

CXI layout (HDF5, CXI 1.6 conventions, root dataset ``cxi_version = 160``):

* measurement: ``/entry_1/instrument_1/detector_1/data`` (float32) and ``mask``
  (uint32, nonzero = invalid); ``/entry_1/data_1/data`` and ``mask`` are soft
  links to them; truth object ``/entry_1/sample_1/truth_object`` (complex64);
  ``meta`` as JSON text in ``/entry_1/note_1/data``.
* result: ``/entry_1/image_1/data`` (complex64 object), ``/entry_1/image_1/mask``
  (uint8 support), ``/entry_1/image_1/process_1/configuration`` (JSON text),
  ``.../process_1/history/<name>``, ``.../process_1/seed``,
  ``.../process_1/timings`` (JSON text); ``/entry_1/data_1`` is a soft link to
  ``/entry_1/image_1`` (as PyNX writes it).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from doubledip import __version__
from doubledip.errors import DataError
from doubledip.result import Result

__all__ = [
    "Measurement",
    "read_pattern",
    "read_mask",
    "write_measurement",
    "read_result",
    "write_result",
    "atomic_output",
    "describe",
    "read_edf",
    "READ_SUFFIXES",
    "WRITE_SUFFIXES",
]

log = logging.getLogger(__name__)

READ_SUFFIXES = {
    ".npz": "npz", ".npy": "npy", ".h5": "hdf5", ".hdf5": "hdf5", ".cxi": "cxi",
    ".tif": "tiff", ".tiff": "tiff", ".edf": "edf",
}
WRITE_SUFFIXES = {".npz": "npz", ".cxi": "cxi"}

CXI_DATA_PATHS = ("/entry_1/data_1/data", "/entry_1/instrument_1/detector_1/data", "/entry_1/image_1/data")
CXI_MASK_PATHS = ("/entry_1/instrument_1/detector_1/mask", "/entry_1/data_1/mask")
CXI_TRUTH_PATH = "/entry_1/sample_1/truth_object"
CXI_META_PATH = "/entry_1/note_1/data"
CXI_VERSION = 160

_FRAME_AXES = {"translation", "experiment_identifier", "frame", "frames", "shot"}
_SPEC = re.compile(r"^(?P<file>.+?\.(?:h5|hdf5|cxi|npz)):(?P<inner>[^:]*)$", re.IGNORECASE)
_INDEX = re.compile(r"^(?P<inner>.*)\[(?P<index>-?\d+)\]$")


# --------------------------------------------------------------------------- measurement


@dataclass
class Measurement:
    """A diffraction pattern ready for a solver.

    Attributes
    ----------
    intensity : ndarray, float32
        Pattern ``(Y, X)`` or ``(Z, Y, X)`` in detector convention (zero
        frequency at index ``N // 2`` per axis), nonnegative.
    mask : ndarray, uint8
        Same shape; nonzero = unmeasured pixel (free in every data term).
    object : ndarray, complex64, optional
        Ground truth on the pattern grid (simulated samples only).
    source : str
        Where it came from (the spec as given).
    meta : dict
        Anything else; readers set ``format``, ``dataset`` and ``dtype`` (the
        dtype of the data in the file), simulations their parameters.
    """

    intensity: np.ndarray
    mask: np.ndarray | None = None
    object: np.ndarray | None = None
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        self.intensity = np.asarray(self.intensity, dtype=np.float32)
        if self.mask is None:
            self.mask = np.zeros(self.intensity.shape, np.uint8)
        self.mask = (np.asarray(self.mask) != 0).astype(np.uint8)
        if self.mask.shape != self.intensity.shape:
            raise ValueError(f"mask shape {self.mask.shape} != intensity shape {self.intensity.shape}")
        if self.object is not None:
            self.object = np.asarray(self.object, dtype=np.complex64)
            if self.object.shape != self.intensity.shape:
                raise ValueError(f"object shape {self.object.shape} != intensity shape {self.intensity.shape}")

    @property
    def ndim(self) -> int:
        return self.intensity.ndim

    @property
    def shape(self) -> tuple[int, ...]:
        return self.intensity.shape


# --------------------------------------------------------------------------- helpers


def _one_line(text) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= 160 else text[:157] + "..."


def _shape(shape) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ")"


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _dumps(value) -> str:
    return json.dumps(value, default=_json_default)


@dataclass
class _Spec:
    label: str  # the spec as the user wrote it, for messages
    path: Path
    fmt: str
    inner: str | None = None
    index: int | None = None

    def with_inner(self, inner) -> str:
        return f"{self.path}:{inner}"


def _parse_spec(spec) -> _Spec:
    """Split ``file[:inner[index]]`` and check that the file exists and has a known suffix."""
    label = str(spec)
    inner = index = None
    path = Path(spec)
    if isinstance(spec, str) and not path.exists():
        match = _SPEC.match(spec)
        if match:
            path, inner = Path(match["file"]), match["inner"]
            found = _INDEX.match(inner)
            if found:
                inner, index = found["inner"], int(found["index"])
            inner = inner or None
    if not path.exists():
        raise DataError(label, "no such file", "check the path")
    if path.is_dir():
        raise DataError(label, "is a folder, not a file", "give the path of a pattern file")
    fmt = READ_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(READ_SUFFIXES)
        raise DataError(label, f"unknown file type '{path.suffix or '(none)'}'", f"convert it to one of {known}")
    return _Spec(label, path, fmt, inner, index)


def _squeeze(array):
    """Drop leading axes of length one (a single frame stored as a stack)."""
    array = np.asarray(array)
    while array.ndim > 2 and array.shape[0] == 1:
        array = array[0]
    return array


def _squeeze_and_check_frames(array, spec: _Spec, where: str, axes: str | None = None):
    """Drop leading length-1 axes; refuse stacks of frames with a hint to pick one."""
    array = _squeeze(array)
    first_axis = (axes or "").split(":")[0].strip().lower()
    few = array.ndim == 3 and array.shape[0] < 4 <= min(array.shape[1:])  # too thin for a 3D pattern
    stacked = array.ndim > 3 or (array.ndim == 3 and (first_axis in _FRAME_AXES or few))
    if stacked:
        if spec.fmt in ("npz", "hdf5", "cxi"):
            fix = f"choose one with {spec.with_inner(where)}[i] or sum the frames and save the sum"
        else:
            fix = "keep one frame or sum the frames and save a 2D or 3D array"
        raise DataError(spec.label, f"holds {array.shape[0]} frames of shape {_shape(array.shape[1:])}", fix)
    return array


def _what(spec: _Spec, where: str, role: str = "pattern") -> str:
    """How messages name what was read: "data", "array 'intensity'", "data at /entry_1/data_1/data"."""
    noun = "data" if role == "pattern" else "mask"
    if where and spec.fmt == "npz":
        return f"array '{where}'"
    if where and spec.fmt in ("hdf5", "cxi"):
        return f"{noun} at {where}"
    return noun


def _check_numeric(dtype, label, what="data", *, mask=False):
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        hint = "" if mask else " (a reconstructed object?)"
        raise DataError(label, f"{what} holds complex values{hint}", "give measured intensities (real, nonnegative)")
    if dtype.kind not in "biuf" or (not mask and dtype.kind == "b"):
        raise DataError(label, f"{what} has dtype {dtype} which is not numeric",
                        "save the mask as 0/1 integers" if mask else "save the counts as integers or floats")


def _check_index(shape, spec: _Spec, where: str):
    if len(shape) < 3:
        raise DataError(spec.label, f"{where} of shape {_shape(shape)} has no frames", "drop the [i] frame index")
    if not -shape[0] <= spec.index < shape[0]:
        raise DataError(spec.label, f"no frame {spec.index} in {where} of shape {_shape(shape)}",
                        f"choose a frame between 0 and {shape[0] - 1}")


def _frame(array, spec: _Spec, where: str):
    """Frame ``spec.index`` of ``array`` (the whole array without an index)."""
    if spec.index is None:
        return array
    _check_index(array.shape, spec, where)
    return array[spec.index]


# --------------------------------------------------------------------------- EDF


_EDF_TYPES = {
    "unsignedbyte": "u1", "unsignedchar": "u1", "signedbyte": "i1", "signedchar": "i1",
    "unsignedshort": "u2", "unsignedshortinteger": "u2", "signedshort": "i2", "signedshortinteger": "i2",
    "unsignedinteger": "u4", "unsignedint": "u4", "signedinteger": "i4", "signedint": "i4",
    "unsignedlong": "u4", "unsignedlonginteger": "u4", "signedlong": "i4", "signedlonginteger": "i4",
    "unsigned64": "u8", "signed64": "i8",
    "floatvalue": "f4", "float": "f4", "floatieee32": "f4", "real": "f4",
    "doublevalue": "f8", "double": "f8", "doubleieee64": "f8",
}


def _edf_header(raw: bytes, start: int, label):
    """Parse one ``{ key = value ; ... }`` header from ``start``; return (dict, data offset)."""
    if raw[start:start + 1] != b"{":
        raise DataError(label, "not an EDF file (no '{' header)", "give an ESRF EDF file or convert the data")
    end = raw.find(b"}", start)
    if end < 0:
        raise DataError(label, "EDF header is truncated (no closing '}')", "re-export the file")
    text = raw[start + 1:end].decode("latin-1")
    header = {}
    for item in text.split(";"):
        key, sep, value = item.partition("=")
        if sep:
            header[key.strip().lower()] = value.strip()
    offset = end + 1
    if raw[offset:offset + 2] == b"\r\n":
        offset += 2
    elif raw[offset:offset + 1] == b"\n":
        offset += 1
    return header, offset


def read_edf(path) -> tuple[np.ndarray, dict[str, str]]:
    """Read an ESRF data format (EDF) file.

    An EDF file is one or more frames, each an ASCII header block
    ``{ key = value ; ... }`` padded with spaces to a multiple of 512 bytes and
    followed by the raw binary data.  ``DataType`` (``UnsignedShort``,
    ``SignedInteger``, ``FloatValue``, ``DoubleValue``, ...), ``ByteOrder``
    (``LowByteFirst`` or ``HighByteFirst``) and ``Dim_1`` (fastest axis, X),
    ``Dim_2`` (Y), ``Dim_3`` (Z) describe it; ``Size`` is the data size in
    bytes.  Compressed EDF is not supported.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    data : ndarray
        ``(Y, X)`` or ``(Z, Y, X)``; several frames are stacked on a new first axis.
    header : dict
        The first frame's header, keys lower case.
    """
    label = str(path)
    raw = Path(path).read_bytes()
    frames, header0, pos = [], None, 0
    while pos < len(raw) and raw[pos:pos + 1] == b"{":
        header, offset = _edf_header(raw, pos, label)
        header0 = header0 or header
        if header.get("compression", "none").lower() not in ("none", "no", ""):
            raise DataError(label, f"compressed EDF ({header['compression']}) is not supported",
                            "save it uncompressed")
        name = header.get("datatype", "").replace(" ", "").lower()
        if name not in _EDF_TYPES:
            raise DataError(label, f"unknown EDF DataType '{header.get('datatype', '')}'",
                            "save it as UnsignedShort, SignedInteger, FloatValue or DoubleValue")
        order = header.get("byteorder", "LowByteFirst").lower()
        dtype = np.dtype(("<" if order.startswith("low") else ">") + _EDF_TYPES[name])
        try:
            dims = [int(header[f"dim_{k}"]) for k in (1, 2, 3) if f"dim_{k}" in header]
        except ValueError:
            raise DataError(label, "EDF Dim_1/Dim_2/Dim_3 are not integers", "fix the header") from None
        if len(dims) < 1 or min(dims) < 1:
            raise DataError(label, "EDF header has no Dim_1/Dim_2 sizes", "fix the header")
        nbytes = int(np.prod(dims)) * dtype.itemsize
        size = int(header.get("size", nbytes) or nbytes)
        if offset + nbytes > len(raw):
            raise DataError(label, f"EDF data truncated ({len(raw) - offset} of {nbytes} bytes)",
                            "copy the whole file again")
        frames.append(np.frombuffer(raw, dtype, int(np.prod(dims)), offset).reshape(dims[::-1]))
        pos = offset + max(size, nbytes)
    if not frames:
        raise DataError(label, "not an EDF file (no '{' header)", "give an ESRF EDF file or convert the data")
    data = frames[0] if len(frames) == 1 else np.stack(frames)
    return data.astype(dtype.newbyteorder("="), copy=True), header0


# --------------------------------------------------------------------------- format readers


@dataclass
class _Raw:
    data: np.ndarray
    where: str = ""
    mask: np.ndarray | None = None
    mask_where: str = ""
    object: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def _npz_pick(z, spec: _Spec, names, role):
    if spec.inner:
        if spec.inner not in z.files:
            raise DataError(spec.label, f"no array '{spec.inner}' (holds: {', '.join(z.files) or 'nothing'})",
                            f"name one of them with {spec.path}:NAME")
        return spec.inner
    for name in names:
        if name in z.files:
            return name
    if role == "mask" and len(z.files) == 1:
        return z.files[0]
    held = ", ".join(z.files) or "nothing"
    if role == "pattern" and {"object", "support", "config"} <= set(z.files):
        raise DataError(spec.label, f"is a reconstruction result (holds: {held}), not a pattern",
                        "give the measured pattern (the sample or data file)")
    raise DataError(spec.label, f"no array named {' or '.join(repr(n) for n in names)} (holds: {held})",
                    f"name one with {spec.path}:NAME")


def _read_npz(spec: _Spec, role) -> _Raw:
    with np.load(spec.path, allow_pickle=False) as z:
        name = _npz_pick(z, spec, ("intensity", "data") if role == "pattern" else ("mask", "data"), role)
        raw = _Raw(_frame(z[name], spec, name), name)
        if role == "pattern":
            if "mask" in z.files and name != "mask":
                raw.mask, raw.mask_where = z["mask"], "mask"
                if spec.index is not None and raw.mask.shape == z[name].shape:
                    raw.mask = raw.mask[spec.index]
            if "object" in z.files and spec.index is None:
                raw.object = z["object"]
            if "meta" in z.files:
                try:
                    raw.meta = dict(json.loads(str(z["meta"])))
                except (ValueError, TypeError):
                    raise DataError(spec.label, "array 'meta' is not JSON text of an object",
                                    "remove it or rewrite it with json.dumps") from None
    return raw


def _h5_datasets(f, limit=8) -> str:
    import h5py

    found = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and len(found) <= limit:
            found.append(f"/{name} {_shape(obj.shape)} {obj.dtype}")

    f.visititems(visit)
    more = ", ..." if len(found) > limit else ""
    return ", ".join(found[:limit]) + more if found else "no datasets"


def _h5_node(f, path):
    try:
        return f.get(path)
    except (KeyError, ValueError, RuntimeError):  # dangling soft link or bad name
        return None


def _h5_dataset(f, path):
    """The dataset at ``path`` (or ``path/data`` for a group), else None."""
    import h5py

    node = _h5_node(f, path)
    if isinstance(node, h5py.Group):
        node = _h5_node(node, "data")
    return node if isinstance(node, h5py.Dataset) else None


def _h5_nexus_default(f):
    import h5py

    node = f
    for _ in range(4):
        target = node.attrs.get("default") if isinstance(node, h5py.Group) else None
        if target is None:
            break
        node = _h5_node(node, target.decode() if isinstance(target, bytes) else str(target))
    if isinstance(node, h5py.Group):
        signal = node.attrs.get("signal")
        if signal is not None:
            node = _h5_node(node, signal.decode() if isinstance(signal, bytes) else str(signal))
    return node if isinstance(node, h5py.Dataset) else None


def _h5_only_candidate(f):
    import h5py

    found = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and obj.ndim >= 2 and obj.dtype.kind in "iuf":
            found.append(obj)

    f.visititems(visit)
    return found[0] if len(found) == 1 else None


def _h5_string(node) -> str:
    value = node[()]
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _read_hdf5(spec: _Spec, role) -> _Raw:
    import h5py

    with h5py.File(spec.path, "r") as f:
        if spec.inner:
            ds = _h5_dataset(f, spec.inner)
            if ds is None:
                raise DataError(spec.label, f"no dataset at {spec.inner} (file holds: {_h5_datasets(f)})",
                                f"choose one with {spec.path}:/path/to/data")
        else:
            defaults = CXI_DATA_PATHS if role == "pattern" else CXI_MASK_PATHS + ("/mask",)
            ds = next((d for d in (_h5_dataset(f, p) for p in defaults) if d is not None), None)
            if ds is None and role == "pattern":
                ds = _h5_nexus_default(f)
            if ds is None:
                for p in ("/data", "/intensity") if role == "pattern" else ("/data",):
                    ds = ds or _h5_dataset(f, p)
            ds = ds or _h5_only_candidate(f)
            if ds is None:
                raise DataError(spec.label, f"no {'pattern' if role == 'pattern' else 'mask'} at the CXI paths "
                                f"(file holds: {_h5_datasets(f)})", f"choose one with {spec.path}:/path/to/data")
        where = spec.inner or ds.name
        _check_numeric(ds.dtype, spec.label, _what(spec, where, role), mask=role == "mask")
        axes = ds.attrs.get("axes")
        axes = axes.decode() if isinstance(axes, bytes) else (str(axes) if axes is not None else None)
        if spec.index is not None:
            _check_index(ds.shape, spec, where)
            raw = _Raw(ds[spec.index], where)
        else:
            raw = _Raw(_squeeze_and_check_frames(ds[()], spec, where, axes), where)
        if role != "pattern":
            return raw
        mask_paths = list(CXI_MASK_PATHS) + ["/mask"]
        parent = ds.parent
        if spec.inner and not parent.name.rsplit("/", 1)[-1].startswith("image_"):
            mask_paths.insert(0, parent.name.rstrip("/") + "/mask")
        for p in mask_paths:
            m = _h5_dataset(f, p)
            if m is not None:
                _check_numeric(m.dtype, spec.label, f"mask at {p}", mask=True)
                raw.mask, raw.mask_where = m[()], p
                if spec.index is not None and m.shape == ds.shape:
                    raw.mask = raw.mask[spec.index]
                break
        truth = _h5_dataset(f, CXI_TRUTH_PATH)
        if truth is not None and spec.index is None:
            raw.object = truth[()]
        note = _h5_node(f, CXI_META_PATH)
        if isinstance(note, h5py.Dataset):
            try:
                raw.meta = dict(json.loads(_h5_string(note)))
            except (ValueError, TypeError):
                log.info("%s: %s is not JSON, ignored", spec.label, CXI_META_PATH)
    return raw


def _read_tiff(spec: _Spec, role) -> _Raw:
    import tifffile

    with _quiet("tifffile"), tifffile.TiffFile(spec.path) as tif:
        series = tif.series[0]
        if "S" in series.axes:
            raise DataError(spec.label, f"is a colour image (axes {series.axes})",
                            "save the detector counts as a single-channel (grey) image")
        data = series.asarray()
    return _Raw(data, "")


@contextlib.contextmanager
def _quiet(logger_name):
    """Silence a library's own log messages about a broken file (we raise one DataError instead)."""
    logger = logging.getLogger(logger_name)
    disabled, logger.disabled = logger.disabled, True
    try:
        yield
    finally:
        logger.disabled = disabled


def _read_npy(spec: _Spec, role) -> _Raw:
    return _Raw(np.load(spec.path, allow_pickle=False), "")


def _read_edf(spec: _Spec, role) -> _Raw:
    data, header = read_edf(spec.path)
    return _Raw(data, "", meta={"edf_header": header})


_READERS = {"npz": _read_npz, "npy": _read_npy, "hdf5": _read_hdf5, "cxi": _read_hdf5,
            "tiff": _read_tiff, "edf": _read_edf}


def _load(spec: _Spec, role: str) -> _Raw:
    """Run the format reader, turning library errors on broken files into DataError."""
    try:
        return _READERS[spec.fmt](spec, role)
    except DataError:
        raise
    except PermissionError:
        raise DataError(spec.label, "permission denied", "check the file's permissions") from None
    except ValueError as err:
        if "allow_pickle" not in str(err):
            raise _broken(spec, err) from None
        raise DataError(spec.label, "holds Python objects (pickled), not numbers",
                        "save a numeric array (np.save of a float or integer array)") from None
    except MemoryError:
        raise DataError(spec.label, "too large to load into memory", "crop or bin the data first") from None
    except Exception as err:  # noqa: BLE001 - any failure of a file library means a broken file
        raise _broken(spec, err) from None


def _broken(spec: _Spec, err: Exception) -> DataError:
    log.debug("reading %s failed", spec.label, exc_info=err)
    return DataError(spec.label, f"cannot read as {spec.fmt.upper()} ({type(err).__name__}: {_one_line(err)})",
                     "the file is truncated or corrupt; copy or export it again")


# --------------------------------------------------------------------------- public readers


def _check_shape(array, label, what):
    if array.ndim not in (2, 3):
        raise DataError(label, f"{what} has {array.ndim} dimension(s), shape {_shape(array.shape)}",
                        "give a 2D (Y, X) or 3D (Z, Y, X) array")
    if min(array.shape) < 4:
        raise DataError(label, f"{what} of shape {_shape(array.shape)} is too small",
                        "give at least 4 pixels along every axis")


def _as_mask(array, label, shape=None, source=None, what="mask"):
    array = np.asarray(array)
    _check_numeric(array.dtype, label, what, mask=True)
    array = _squeeze(array)
    if shape is not None and array.shape != tuple(shape):
        of = f" of {source}" if source else ""
        raise DataError(label, f"{what} shape {_shape(array.shape)} does not match the pattern shape "
                        f"{_shape(shape)}{of}", "give a mask with the pattern's shape")
    _check_shape(array, label, what)
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise DataError(label, f"{what} holds NaN or Inf values", "save the mask as 0 (measured) / 1 (unmeasured)")
    return (array != 0).astype(np.uint8)


def read_mask(spec, shape=None, *, source=None) -> np.ndarray:
    """Read a mask (nonzero = unmeasured pixel) from any readable format.

    Parameters
    ----------
    spec : str, Path or ndarray
        A file (``.npz`` array ``mask`` or ``data`` or its only array; HDF5/CXI
        ``/entry_1/instrument_1/detector_1/mask``, ``/entry_1/data_1/mask``,
        ``/mask``; any image), ``file:inner`` to choose, or an array.
    shape : tuple of int, optional
        Required shape (the pattern's); a mismatch names both shapes.
    source : str, optional
        The pattern's file, named in the mismatch message.

    Returns
    -------
    ndarray, uint8
        1 where the pixel is unmeasured, 0 elsewhere.
    """
    if isinstance(spec, np.ndarray):
        return _as_mask(spec, source or "mask array", shape, source)
    parsed = _parse_spec(spec)
    raw = _load(parsed, "mask")
    data = _squeeze_and_check_frames(np.asarray(raw.data), parsed, raw.where)
    return _as_mask(data, parsed.label, shape, source, _what(parsed, raw.where, "mask"))


def _clean_intensity(data, mask, label, what):
    """Check values at measured pixels; zero the free (masked) ones; cast to float32."""
    measured = mask == 0
    if not measured.any():
        raise DataError(label, f"all {data.size} pixels are masked",
                        "check the mask: nonzero marks unmeasured pixels (is it inverted?)")
    values = data.astype(np.float64 if data.dtype.kind == "f" and data.dtype.itemsize > 4 else np.float32)
    if values.dtype.kind == "f":
        bad = ~np.isfinite(values)
        n_bad = int(np.count_nonzero(bad & measured))
        if n_bad:
            raise DataError(label, f"{n_bad} measured pixel(s) are NaN or Inf",
                            "replace them and mark them unmeasured in the mask")
        values = np.where(bad, 0, values)
    negative = values < 0
    n_neg = int(np.count_nonzero(negative & measured))
    if n_neg:
        low = float(values[negative & measured].min())
        raise DataError(label, f"{n_neg} measured pixel(s) are negative (min {low:.4g}; intensities are counts)",
                        "clip or re-threshold the background (np.clip(I, 0, None)) or mask those pixels")
    values = np.where(negative, 0, values)
    intensity = values.astype(np.float32)
    if not np.isfinite(intensity).all():
        raise DataError(label, "values overflow float32", "rescale the data")
    if not np.any(intensity[measured] > 0):
        zero = "all-zero" if measured.all() else "zero at every measured pixel"
        raise DataError(label, f"{what} is {zero}",
                        "check that the right file/dataset was read and that the mask is not inverted")
    return intensity


def read_pattern(spec, *, mask=None) -> Measurement:
    """Read a diffraction pattern, its mask and (for simulations) the true object.

    Parameters
    ----------
    spec : str or Path
        Pattern file (``.npz .npy .h5 .hdf5 .cxi .tif .tiff .edf``), or
        ``file:inner`` to choose a dataset/array, with optional ``[i]`` to pick
        a frame (see the module documentation for the default locations).
    mask : str, Path or ndarray, optional
        Mask to use instead of the one stored with the pattern (nonzero =
        unmeasured); any format :func:`read_mask` reads.

    Returns
    -------
    Measurement
        ``intensity`` float32 (nonnegative, finite), ``mask`` uint8, ``object``
        complex64 or None; ``meta['dtype']`` is the dtype in the file,
        ``meta['format']`` and ``meta['dataset']`` say what was read,
        ``meta['mask_source']`` where the mask came from.

    Raises
    ------
    DataError
        Missing, unreadable, truncated or unknown files; missing datasets
        (the message lists what exists); data that is not 2D/3D, smaller than
        4 pixels per axis, complex or non-numeric, NaN/Inf or negative at
        measured pixels, zero everywhere measured; a mask of another shape or
        masking every pixel.
    """
    parsed = _parse_spec(spec)
    raw = _load(parsed, "pattern")
    data = np.asarray(raw.data)
    what = _what(parsed, raw.where)
    _check_numeric(data.dtype, parsed.label, what)
    dtype = str(data.dtype)
    data = _squeeze_and_check_frames(data, parsed, raw.where or "data")
    _check_shape(data, parsed.label, what)
    if mask is not None:
        mask_array = read_mask(mask, data.shape, source=parsed.label)
        mask_source = "array" if isinstance(mask, np.ndarray) else str(mask)
    elif raw.mask is not None and (not parsed.inner or _squeeze(raw.mask).shape == data.shape):
        mask_array = _as_mask(raw.mask, parsed.label, data.shape, None, _what(parsed, raw.mask_where, "mask"))
        mask_source = parsed.with_inner(raw.mask_where)
    else:
        mask_array, mask_source = np.zeros(data.shape, np.uint8), None
    intensity = _clean_intensity(data, mask_array, parsed.label, what)
    obj = None
    if raw.object is not None and (not parsed.inner or _squeeze(raw.object).shape == data.shape):
        truth = _squeeze(raw.object)
        if truth.shape != intensity.shape or truth.dtype.kind not in "biufc":
            raise DataError(parsed.label, f"ground-truth object has shape {_shape(truth.shape)} and dtype "
                            f"{truth.dtype}, pattern {_shape(intensity.shape)}",
                            "store the object as a complex array on the pattern grid")
        obj = truth.astype(np.complex64)
    meta = dict(raw.meta)
    meta.update(format=parsed.fmt, dataset=raw.where or None, dtype=dtype,
                mask_source=str(mask_source) if mask_source is not None else None)
    return Measurement(intensity, mask_array, obj, parsed.label, meta)


# --------------------------------------------------------------------------- writing


def _output_format(path, what) -> str:
    path = Path(path)
    fmt = WRITE_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise DataError(path, f"cannot write a {what} as '{path.suffix or '(no suffix)'}'",
                        f"use one of {', '.join(WRITE_SUFFIXES)}")
    return fmt


@contextlib.contextmanager
def atomic_output(path):
    """Write a file all at once: yield a temporary path in the same folder, rename it on success.

    On any exception the temporary file is removed and nothing appears at
    ``path``; an existing file at ``path`` is replaced only on success.

    Raises
    ------
    DataError
        If the folder does not exist, ``path`` is a folder, or the folder is not writable.
    """
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise DataError(path, f"output folder '{folder}' does not exist", "create it or choose another path")
    if path.is_dir():
        raise DataError(path, "is a folder", "give a file name")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
    except OSError as err:
        raise DataError(path, f"cannot write in '{folder}' ({err.strerror or err})",
                        "choose a writable folder") from None
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _write(path, fmt, writer, *args):
    try:
        with atomic_output(path) as tmp:
            writer(tmp, fmt, *args)
    except OSError as err:
        raise DataError(path, f"cannot write ({type(err).__name__}: {_one_line(err)})",
                        "check free disk space and permissions") from None


def _savez(tmp, arrays):
    with open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def _cxi_root(f):
    f.create_dataset("cxi_version", data=np.int64(CXI_VERSION))
    f.attrs["default"] = "entry_1"
    f.attrs["creator"] = f"doubledip {__version__}"
    entry = f.create_group("entry_1")
    entry.attrs["NX_class"] = "NXentry"
    entry.attrs["default"] = "data_1"
    entry.create_dataset("program_name", data=f"doubledip {__version__}")
    return entry


def _write_measurement_body(tmp, fmt, m: Measurement):
    intensity = np.asarray(m.intensity, np.float32)
    mask = (np.asarray(m.mask) != 0).astype(np.uint8)
    meta = _dumps(m.meta)
    if fmt == "npz":
        arrays = {"intensity": intensity, "mask": mask, "meta": np.array(meta)}
        if m.object is not None:
            arrays["object"] = np.asarray(m.object, np.complex64)
        _savez(tmp, arrays)
        return
    import h5py

    with h5py.File(tmp, "w") as f:
        entry = _cxi_root(f)
        detector = entry.create_group("instrument_1").create_group("detector_1")
        detector.attrs["NX_class"] = "NXdetector"
        data = detector.create_dataset("data", data=intensity, compression="gzip", shuffle=True)
        data.attrs["interpretation"] = "image"
        detector.create_dataset("mask", data=mask.astype(np.uint32), compression="gzip", shuffle=True)
        data_1 = entry.create_group("data_1")
        data_1.attrs["NX_class"] = "NXdata"
        data_1.attrs["signal"] = "data"
        data_1["data"] = h5py.SoftLink("/entry_1/instrument_1/detector_1/data")
        data_1["mask"] = h5py.SoftLink("/entry_1/instrument_1/detector_1/mask")
        sample = entry.create_group("sample_1")
        sample.attrs["NX_class"] = "NXsample"
        if m.object is not None:
            truth = sample.create_dataset("truth_object", data=np.asarray(m.object, np.complex64),
                                          compression="gzip", shuffle=True)
            truth.attrs["description"] = "ground-truth object on the pattern grid (centred, origin at N//2)"
        note = entry.create_group("note_1")
        note.create_dataset("data", data=meta)
        note.create_dataset("type", data="application/json")
        note.create_dataset("description", data="doubledip measurement metadata")


def write_measurement(path, measurement: Measurement) -> None:
    """Write a measurement (pattern, mask, optional truth object, meta) as ``.npz`` or ``.cxi``.

    The layouts are the file contract of the module documentation; the write is
    atomic (:func:`atomic_output`).

    Raises
    ------
    DataError
        Unsupported suffix, missing output folder, or a failed write.
    """
    fmt = _output_format(path, "measurement")
    _write(path, fmt, _write_measurement_body, measurement)


def _write_result_body(tmp, fmt, result: Result):
    obj = np.asarray(result.object, np.complex64)
    support = np.asarray(result.support, bool)
    config, timings = _dumps(result.config), _dumps(result.timings)
    if fmt == "npz":
        arrays = {"object": obj, "support": support, "config": np.array(config),
                  "seed": np.array(int(result.seed)), "timings": np.array(timings)}
        for name, curve in result.history.items():
            arrays["history" if name == "loss" else f"history_{name}"] = np.asarray(curve)
        _savez(tmp, arrays)
        return
    import h5py

    with h5py.File(tmp, "w") as f:
        entry = _cxi_root(f)
        image = entry.create_group("image_1")
        image.attrs["NX_class"] = "NXdata"
        image.attrs["signal"] = "data"
        image.create_dataset("data", data=obj, compression="gzip", shuffle=True)
        support_ds = image.create_dataset("mask", data=support.astype(np.uint8), compression="gzip")
        support_ds.attrs["note"] = "support: 1 inside the object"
        image.create_dataset("data_type", data="electron density")
        image.create_dataset("data_space", data="real")
        image.create_dataset("is_fft_shifted", data=np.int64(0))
        process = image.create_group("process_1")
        process.attrs["NX_class"] = "NXprocess"
        process.create_dataset("program", data="doubledip")
        process.create_dataset("version", data=__version__)
        process.create_dataset("configuration", data=config)
        process.create_dataset("seed", data=np.int64(result.seed))
        process.create_dataset("timings", data=timings)
        history = process.create_group("history")
        for name, curve in result.history.items():
            history.create_dataset(name, data=np.asarray(curve))
        entry["data_1"] = h5py.SoftLink("/entry_1/image_1")


def write_result(path, result: Result) -> None:
    """Write a reconstruction as ``.npz`` or ``.cxi`` (atomic; layout in the module documentation).

    Raises
    ------
    DataError
        Unsupported suffix, missing output folder, or a failed write.
    """
    fmt = _output_format(path, "result")
    _write(path, fmt, _write_result_body, result)


def _not_a_result(spec: _Spec, missing) -> DataError:
    return DataError(spec.label, f"not a doubledip result file (missing {', '.join(missing)})",
                     "give a result written by doubledip (write_result or `doubledip phase -o`)")


def _parse_json(text, spec: _Spec, name):
    try:
        return json.loads(text)
    except ValueError:
        raise DataError(spec.label, f"'{name}' is not valid JSON", "write the result again") from None


def _read_result_npz(spec: _Spec):
    with np.load(spec.path, allow_pickle=False) as z:
        missing = [k for k in ("object", "support", "config") if k not in z.files]
        if missing:
            raise _not_a_result(spec, missing)
        history = {}
        for key in z.files:
            if key == "history":
                history["loss"] = z[key]
            elif key.startswith("history_"):
                history[key[len("history_"):]] = z[key]
        config = _parse_json(str(z["config"]), spec, "config")
        timings = _parse_json(str(z["timings"]), spec, "timings") if "timings" in z.files else {}
        seed = int(z["seed"]) if "seed" in z.files else int(config.get("seed", 0) or 0)
        return z["object"], z["support"], history, config, seed, timings


def _read_result_cxi(spec: _Spec):
    import h5py

    with h5py.File(spec.path, "r") as f:
        paths = {"object": "/entry_1/image_1/data", "support": "/entry_1/image_1/mask",
                 "config": "/entry_1/image_1/process_1/configuration"}
        nodes = {k: _h5_node(f, p) for k, p in paths.items()}
        missing = [paths[k] for k, node in nodes.items() if not isinstance(node, h5py.Dataset)]
        if missing:
            raise _not_a_result(spec, missing)
        process = f["/entry_1/image_1/process_1"]
        config = _parse_json(_h5_string(nodes["config"]), spec, "configuration")
        timings = _parse_json(_h5_string(process["timings"]), spec, "timings") if "timings" in process else {}
        seed = int(process["seed"][()]) if "seed" in process else int(config.get("seed", 0) or 0)
        history = {}
        if isinstance(process.get("history"), h5py.Group):
            history = {name: ds[()] for name, ds in process["history"].items() if isinstance(ds, h5py.Dataset)}
        return nodes["object"][()], nodes["support"][()], history, config, seed, timings


def read_result(spec) -> Result:
    """Read a result written by :func:`write_result` (``.npz`` or ``.cxi``).

    Raises
    ------
    DataError
        Missing or broken file, a file without the result entries ("not a
        doubledip result file"), or inconsistent entries.
    """
    parsed = _parse_spec(spec)
    if parsed.fmt not in ("npz", "cxi", "hdf5"):
        raise DataError(parsed.label, f"results are .npz or .cxi files, not '{parsed.path.suffix}'",
                        "give a result written by doubledip")
    reader = _read_result_npz if parsed.fmt == "npz" else _read_result_cxi
    try:
        obj, support, history, config, seed, timings = reader(parsed)
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001 - a broken file, whatever the library says
        raise DataError(parsed.label, f"cannot read the result ({type(err).__name__}: {_one_line(err)})",
                        "the file is truncated or corrupt; write it again") from None
    obj = np.asarray(obj)
    if obj.ndim not in (2, 3) or obj.dtype.kind not in "iufc":
        raise DataError(parsed.label, f"object has shape {_shape(obj.shape)} and dtype {obj.dtype}",
                        "give a result written by doubledip")
    if not isinstance(config, dict) or not isinstance(timings, dict):
        raise DataError(parsed.label, "config and timings must be JSON objects", "write the result again")
    try:
        return Result(obj, np.asarray(support) != 0, history, config, seed, timings)
    except ValueError as err:
        raise DataError(parsed.label, _one_line(err), "write the result again") from None


# --------------------------------------------------------------------------- description


_DETECTOR_LIMITS = (12, 14, 16, 20, 24, 32)


def _centre_of_mass(weights) -> list[float]:
    total = weights.sum(dtype=np.float64)
    centre = []
    for axis in range(weights.ndim):
        other = tuple(a for a in range(weights.ndim) if a != axis)
        profile = weights.sum(axis=other, dtype=np.float64)
        centre.append(float(np.dot(profile, np.arange(weights.shape[axis])) / total))
    return centre


def describe(measurement: Measurement) -> dict[str, Any]:
    r"""Summarise a measurement for ``doubledip info`` (JSON-serialisable).

    The centre is the intensity-weighted centre of mass over measured pixels,
    :math:`c_k = \sum_j j_k I_j / \sum_j I_j`; in the detector convention a
    centred pattern has it near ``N // 2`` (exactly, for noise-free Friedel
    symmetric data on an odd grid).

    Returns
    -------
    dict
        ``source, format, dataset, shape, ndim, dtype, pixels, total_counts,
        max_counts, masked_pixels, masked_fraction, zero_fraction`` (among
        measured pixels), ``centre`` (centre of mass), ``grid_centre``
        (``N // 2``), ``centre_offset``, ``peak`` (index of the maximum),
        ``mask_source``, ``has_object`` and ``warnings`` (list of str).
    """
    intensity, mask = measurement.intensity, measurement.mask
    measured = mask == 0
    values = intensity[measured]
    weights = np.where(measured, intensity, 0).astype(np.float64)
    shape = [int(s) for s in intensity.shape]
    grid_centre = [s // 2 for s in shape]
    has_counts = bool(values.size) and float(values.sum()) > 0
    centre = _centre_of_mass(weights) if has_counts else None
    offset = [c - g for c, g in zip(centre, grid_centre)] if has_counts else None
    peak = [int(i) for i in np.unravel_index(int(np.argmax(np.where(measured, intensity, -np.inf))), intensity.shape)]
    meta = measurement.meta or {}
    dtype = str(meta.get("dtype", intensity.dtype))
    max_counts = float(values.max()) if values.size else 0.0
    info = {
        "source": measurement.source,
        "format": meta.get("format"),
        "dataset": meta.get("dataset") or None,
        "shape": shape,
        "ndim": intensity.ndim,
        "dtype": dtype,
        "pixels": int(intensity.size),
        "total_counts": float(values.sum(dtype=np.float64)),
        "max_counts": max_counts,
        "masked_pixels": int(intensity.size - values.size),
        "masked_fraction": float(1 - values.size / intensity.size),
        "zero_fraction": float(np.mean(values == 0)) if values.size else 0.0,
        "centre": centre,
        "grid_centre": grid_centre,
        "centre_offset": offset,
        "peak": peak,
        "mask_source": meta.get("mask_source"),
        "has_object": measurement.object is not None,
        "warnings": [],
    }
    warnings = info["warnings"]
    tolerance = [max(2.0, 0.02 * s) for s in shape]
    off_centre = has_counts and any(abs(o) > t for o, t in zip(offset, tolerance))
    if off_centre:
        warnings.append(
            f"pattern not centred: centre of mass {_fmt_vec(centre)} is {_fmt_vec(offset, signed=True)} pixels "
            f"from N//2 = {tuple(grid_centre)}; shift it so the zero frequency sits at N//2"
        )
    try:
        kind = np.dtype(dtype).kind
    except TypeError:
        kind = intensity.dtype.kind
    if kind in "iu":
        limits = [(int(np.iinfo(dtype).max), f"{dtype} limit")]
    else:
        limits = [(2**b - 1, f"{b}-bit limit") for b in _DETECTOR_LIMITS]
    for limit, name in limits:
        if limit - 1 <= max_counts <= limit and max_counts > 255:
            n_at = int(np.count_nonzero(values >= limit - 1))
            warnings.append(f"maximum {max_counts:.0f} is at the {name} ({n_at} pixel(s)): saturated or "
                            f"flagged pixels? mask them if so")
            break
    if kind == "f" and values.size and np.any(values != np.round(values)):
        warnings.append("values are not whole numbers: not raw photon counts (the Poisson data term assumes counts)")
    if info["masked_fraction"] > 0.5:
        warnings.append(f"{100 * info['masked_fraction']:.0f}% of pixels are masked: is the mask inverted "
                        f"(nonzero = unmeasured)?")
    if has_counts and not off_centre and any(abs(p - g) > t for p, g, t in zip(peak, grid_centre, tolerance)):
        warnings.append(f"brightest pixel {tuple(peak)} is far from N//2 = {tuple(grid_centre)}: check centring")
    return info


def _fmt_vec(values, signed=False) -> str:
    fmt = "{:+.2f}" if signed else "{:.2f}"
    return "(" + ", ".join(fmt.format(v) for v in values) + ")"
