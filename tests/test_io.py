"""File I/O: round trips for every format, the CXI layout, validation, atomic writes, describe()."""

import json

import h5py
import numpy as np
import pytest
import tifffile

from doubledip import io
from doubledip.errors import DataError
from doubledip.io import Measurement, describe, read_mask, read_pattern, read_result, write_measurement, write_result
from doubledip.result import Result


def write_edf(path, array, data_type, byte_order="LowByteFirst", extra_header="", data=True):
    """A minimal ESRF EDF writer: ``{ key = value ; }`` header padded to 512 bytes, then raw data."""
    array = np.asarray(array)
    keys = {"HeaderID": "EH:000001:000000:000000", "ByteOrder": byte_order, "DataType": data_type,
            "Size": array.nbytes}
    keys.update({f"Dim_{i + 1}": n for i, n in enumerate(array.shape[::-1])})
    text = "{\n" + "".join(f"{k} = {v} ;\n" for k, v in keys.items()) + extra_header
    text += " " * (-(len(text) + 2) % 512) + "}\n"
    assert len(text) % 512 == 0
    endian = "<" if byte_order == "LowByteFirst" else ">"
    payload = array.astype(array.dtype.newbyteorder(endian)).tobytes() if data else b""
    path.write_bytes(text.encode("ascii") + payload)
    return path


def counts(rng, shape, dtype=np.uint16):
    """Poisson counts with a bright centre at N//2 (detector convention), no zero-only data."""
    grids = np.meshgrid(*[np.arange(n) - n // 2 for n in shape], indexing="ij")
    r2 = sum(g.astype(float) ** 2 for g in grids)
    return rng.poisson(200 * np.exp(-r2 / 8) + 1).astype(dtype)


def sample(rng, shape=(16, 16)):
    mask = np.zeros(shape, np.uint8)
    mask[(0,) * len(shape)] = 1
    obj = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    return Measurement(counts(rng, shape, np.float32), mask, obj, meta={"kind": "test", "seed": 3, "photons": 1e4})


def result(rng, shape=(12, 10)):
    obj = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    history = {"loss": rng.random(7), "free_loss": rng.random(7), "starts": rng.random((3, 7))}
    config = {"method": "er", "options": {"iterations": 7, "beta": 0.9, "recipe": "7*ER"}, "seed": 11}
    return Result(obj, np.abs(obj) > 0.5, history, config, 11, {"total": 0.25, "fit": 0.2})


def assert_same_result(a, b):
    np.testing.assert_array_equal(a.object, b.object)
    np.testing.assert_array_equal(a.support, b.support)
    assert a.object.dtype == np.complex64 and b.support.dtype == bool
    assert a.history.keys() == b.history.keys()
    for k in a.history:
        np.testing.assert_array_equal(a.history[k], b.history[k])
    assert (a.config, a.seed, a.timings) == (b.config, b.seed, b.timings)


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("suffix", [".npz", ".cxi"])
@pytest.mark.parametrize("shape", [(16, 16), (15, 17), (8, 9, 10)])
def test_measurement_round_trip(tmp_path, rng, suffix, shape):
    m = sample(rng, shape)
    path = tmp_path / f"s{suffix}"
    write_measurement(path, m)
    back = read_pattern(path)
    np.testing.assert_array_equal(back.intensity, m.intensity)
    np.testing.assert_array_equal(back.mask, m.mask)
    np.testing.assert_array_equal(back.object, m.object)
    assert back.intensity.dtype == np.float32 and back.mask.dtype == np.uint8 and back.object.dtype == np.complex64
    assert {k: back.meta[k] for k in m.meta} == m.meta
    assert back.meta["dtype"] == "float32" and back.source == str(path)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_npz_contract(tmp_path, rng):
    m = sample(rng)
    write_measurement(tmp_path / "s.npz", m)
    with np.load(tmp_path / "s.npz") as z:
        assert z["intensity"].dtype == np.float32 and z["mask"].dtype == np.uint8
        assert z["object"].dtype == np.complex64 and json.loads(str(z["meta"]))["kind"] == "test"


def test_cxi_measurement_layout(tmp_path, rng):
    m = sample(rng)
    write_measurement(tmp_path / "s.cxi", m)
    with h5py.File(tmp_path / "s.cxi", "r") as f:
        assert f["cxi_version"][()] == 160
        np.testing.assert_array_equal(f["/entry_1/instrument_1/detector_1/data"][()], m.intensity)
        np.testing.assert_array_equal(f["/entry_1/data_1/data"][()], m.intensity)
        assert f["/entry_1/data_1"].get("data", getlink=True).path == "/entry_1/instrument_1/detector_1/data"
        np.testing.assert_array_equal(f["/entry_1/instrument_1/detector_1/mask"][()] != 0, m.mask != 0)
        np.testing.assert_array_equal(f[io.CXI_TRUTH_PATH][()], m.object)


@pytest.mark.parametrize("suffix", [".npz", ".cxi"])
def test_result_round_trip(tmp_path, rng, suffix):
    r = result(rng)
    write_result(tmp_path / f"r{suffix}", r)
    assert_same_result(read_result(tmp_path / f"r{suffix}"), r)


def test_result_npz_contract_and_cxi_layout(tmp_path, rng):
    r = result(rng)
    write_result(tmp_path / "r.npz", r)
    write_result(tmp_path / "r.cxi", r)
    with np.load(tmp_path / "r.npz") as z:
        assert z["object"].dtype == np.complex64 and z["support"].dtype == bool
        assert {"history", "history_free_loss", "history_starts", "config", "seed", "timings"} <= set(z.files)
        assert json.loads(str(z["config"]))["method"] == "er" and int(z["seed"]) == 11
    with h5py.File(tmp_path / "r.cxi", "r") as f:
        assert f["cxi_version"][()] == 160
        np.testing.assert_array_equal(f["/entry_1/image_1/data"][()], r.object)
        np.testing.assert_array_equal(f["/entry_1/data_1/data"][()], r.object)  # PyNX-style link
        assert json.loads(f["/entry_1/image_1/process_1/configuration"].asstr()[()]) == r.config
        assert f["/entry_1/image_1/process_1/history/loss"].shape == (7,)


def test_npy_keeps_original_dtype(tmp_path, rng):
    data = counts(rng, (16, 12))
    np.save(tmp_path / "p.npy", data)
    m = read_pattern(tmp_path / "p.npy")
    np.testing.assert_array_equal(m.intensity, data.astype(np.float32))
    assert m.meta["dtype"] == "uint16" and not m.mask.any() and m.object is None


def test_npz_data_key_and_inner_name(tmp_path, rng):
    data = counts(rng, (10, 10))
    np.savez(tmp_path / "a.npz", data=data)
    np.savez(tmp_path / "b.npz", counts=data, other=data * 2)
    np.testing.assert_array_equal(read_pattern(tmp_path / "a.npz").intensity, data)
    np.testing.assert_array_equal(read_pattern(f"{tmp_path / 'b.npz'}:other").intensity, data * 2)


def test_hdf5_paths_masks_and_frames(tmp_path, rng):
    data, mask = counts(rng, (3, 12, 12)), np.zeros((12, 12), np.uint32)
    mask[0, :] = 4  # CXI bit-coded mask: any nonzero bit means unmeasured
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f["/scan/frames"] = data
        f["/scan/mask"] = mask
        f["/single/data"] = data[:1]
    path = tmp_path / "f.h5"
    m = read_pattern(f"{path}:/scan/frames[1]")
    np.testing.assert_array_equal(m.intensity, data[1])
    np.testing.assert_array_equal(m.mask, (mask != 0).astype(np.uint8))
    assert m.meta["mask_source"].endswith("/scan/mask")
    single = read_pattern(f"{path}:/single")  # a group holding `data`; the leading frame axis is dropped
    np.testing.assert_array_equal(single.intensity, data[0])
    with pytest.raises(DataError, match=r"3 frames of shape \(12, 12\).*frames\[i\]"):
        read_pattern(f"{path}:/scan/frames")


def test_hdf5_3d_pattern_and_only_dataset(tmp_path, rng):
    data = counts(rng, (6, 8, 10))
    with h5py.File(tmp_path / "v.h5", "w") as f:
        f["/some/where/volume"] = data
        f["/some/where/note"] = "text"
    np.testing.assert_array_equal(read_pattern(tmp_path / "v.h5").intensity, data)


def test_hdf5_nexus_default_signal(tmp_path, rng):
    data = counts(rng, (10, 12))
    with h5py.File(tmp_path / "nx.h5", "w") as f:
        f.attrs["default"] = "scan"
        f["/scan/plot/counts"] = data
        f["/scan/plot/other"] = data * 2
        f["/scan"].attrs["default"] = "plot"
        f["/scan/plot"].attrs["signal"] = "counts"
    np.testing.assert_array_equal(read_pattern(tmp_path / "nx.h5").intensity, data)


def test_cxi_default_paths_like_pynx(tmp_path, rng):
    data = counts(rng, (1, 16, 16), np.int32)
    mask = np.zeros((16, 16), np.uint8)
    mask[8, 8] = 1
    path = tmp_path / "pynx.cxi"
    with h5py.File(path, "w") as f:
        f["cxi_version"] = 140
        f["/entry_1/instrument_1/detector_1/data"] = data
        f["/entry_1/instrument_1/detector_1/mask"] = mask
        f["/entry_1/data_1/data"] = h5py.SoftLink("/entry_1/instrument_1/detector_1/data")
    m = read_pattern(path)
    assert m.intensity.shape == (16, 16) and m.meta["dtype"] == "int32"
    np.testing.assert_array_equal(m.intensity, data[0])
    np.testing.assert_array_equal(m.mask, mask)


def test_cxi_stack_of_frames_needs_a_choice(tmp_path, rng):
    path = tmp_path / "stack.cxi"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("/entry_1/data_1/data", data=counts(rng, (4, 8, 8)))
        ds.attrs["axes"] = "experiment_identifier:y:x"
    with pytest.raises(DataError, match=r"4 frames.*\[i\]"):
        read_pattern(path)
    assert read_pattern(f"{path}:/entry_1/data_1/data[2]").intensity.shape == (8, 8)


def test_tiff_2d_and_3d(tmp_path, rng):
    flat, volume = counts(rng, (16, 20)), counts(rng, (5, 8, 8), np.float32)
    tifffile.imwrite(tmp_path / "a.tif", flat)
    tifffile.imwrite(tmp_path / "b.tiff", volume)
    m = read_pattern(tmp_path / "a.tif")
    np.testing.assert_array_equal(m.intensity, flat)
    assert m.meta["dtype"] == "uint16"
    np.testing.assert_array_equal(read_pattern(tmp_path / "b.tiff").intensity, volume)


@pytest.mark.parametrize(
    "data_type, dtype, order",
    [("UnsignedShort", np.uint16, "LowByteFirst"), ("SignedInteger", np.int32, "HighByteFirst"),
     ("UnsignedLong", np.uint32, "LowByteFirst"), ("FloatValue", np.float32, "HighByteFirst"),
     ("DoubleValue", np.float64, "LowByteFirst")],
)
def test_edf(tmp_path, rng, data_type, dtype, order):
    data = counts(rng, (12, 20), dtype)
    write_edf(tmp_path / "p.edf", data, data_type, order, extra_header="Title = with ; a long header ;\n" * 30)
    m = read_pattern(tmp_path / "p.edf")
    np.testing.assert_array_equal(m.intensity, data.astype(np.float32))
    assert m.meta["dtype"] == np.dtype(dtype).name


def test_edf_3d(tmp_path, rng):
    data = counts(rng, (5, 6, 7), np.float32)
    write_edf(tmp_path / "v.edf", data, "FloatValue")
    np.testing.assert_array_equal(read_pattern(tmp_path / "v.edf").intensity, data)


def write_mask(path, mask):
    """Write ``mask`` in the format of ``path``'s suffix."""
    suffix = path.suffix
    if suffix == ".npy":
        np.save(path, mask)
    elif suffix == ".npz":
        np.savez(path, mask=mask)
    elif suffix in (".h5", ".cxi"):
        with h5py.File(path, "w") as f:
            f["/entry_1/instrument_1/detector_1/mask"] = mask
    elif suffix == ".tif":
        tifffile.imwrite(path, mask)
    elif suffix == ".edf":
        write_edf(path, mask, "UnsignedByte")
    return path


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".h5", ".cxi", ".tif", ".edf"])
def test_mask_from_every_format(tmp_path, rng, suffix):
    m = sample(rng)
    write_measurement(tmp_path / "s.npz", m)
    mask = np.zeros((16, 16), np.uint8)
    mask[6:10, 6:10] = 1
    path = write_mask(tmp_path / f"mask{suffix}", mask)
    np.testing.assert_array_equal(read_mask(path, (16, 16)), mask)
    back = read_pattern(tmp_path / "s.npz", mask=path)
    np.testing.assert_array_equal(back.mask, mask)  # --mask replaces the file's own mask
    assert back.meta["mask_source"] == str(path)


def test_measurement_defaults_and_checks():
    m = Measurement(np.ones((6, 5), np.float64), mask=np.eye(6, 5, dtype=bool))
    assert m.intensity.dtype == np.float32 and m.mask.dtype == np.uint8 and m.mask.sum() == 5
    assert not Measurement(np.ones((4, 4))).mask.any() and m.shape == (6, 5) and m.ndim == 2
    with pytest.raises(ValueError, match="mask shape"):
        Measurement(np.ones((4, 4)), np.zeros((4, 5)))


def test_masked_pixels_are_free(tmp_path, rng):
    """Detector gap markers (-1, NaN) at masked pixels become zeros; elsewhere they are errors."""
    data = counts(rng, (12, 12), np.float32)
    data[0, :3] = [-1, np.nan, np.inf]
    mask = np.zeros((12, 12), np.uint8)
    mask[0, :3] = 1
    np.savez(tmp_path / "gaps.npz", intensity=data, mask=mask)
    m = read_pattern(tmp_path / "gaps.npz")
    assert np.all(m.intensity[0, :3] == 0) and np.isfinite(m.intensity).all()
    np.testing.assert_array_equal(m.intensity[1:], data[1:])


# ----------------------------------------------------------------------------- errors


def test_result_reader_refuses_other_files(tmp_path, rng):
    write_measurement(tmp_path / "s.npz", sample(rng))
    write_measurement(tmp_path / "s.cxi", sample(rng))
    for name in ("s.npz", "s.cxi"):
        with pytest.raises(DataError, match="not a doubledip result"):
            read_result(tmp_path / name)
    write_result(tmp_path / "r.npz", result(rng))
    (tmp_path / "cut.npz").write_bytes((tmp_path / "r.npz").read_bytes()[:200])
    with pytest.raises(DataError, match="cut.npz.*truncated or corrupt"):
        read_result(tmp_path / "cut.npz")


def test_mask_shape_mismatch_names_both_shapes(tmp_path, rng):
    write_measurement(tmp_path / "s.npz", sample(rng))
    np.save(tmp_path / "m.npy", np.zeros((8, 8)))
    with pytest.raises(DataError, match=r"m\.npy.*\(8, 8\).*\(16, 16\)"):
        read_pattern(tmp_path / "s.npz", mask=tmp_path / "m.npy")


def test_unknown_output_suffix_and_missing_folder(tmp_path, rng):
    with pytest.raises(DataError, match=r"\.npz, \.cxi"):
        write_measurement(tmp_path / "s.tif", sample(rng))
    with pytest.raises(DataError, match="does not exist"):
        write_result(tmp_path / "nowhere" / "r.npz", result(rng))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".npz", ".cxi"])
def test_failed_write_leaves_nothing_behind(tmp_path, rng, monkeypatch, suffix):
    path = tmp_path / f"out{suffix}"
    path.write_bytes(b"previous")

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    target = (np, "savez_compressed") if suffix == ".npz" else (h5py.Group, "create_group")
    monkeypatch.setattr(*target, broken)
    with pytest.raises(DataError, match="No space left"):
        write_result(path, result(rng))
    assert [p.name for p in tmp_path.iterdir()] == [path.name] and path.read_bytes() == b"previous"


def test_atomic_output_cleans_up_on_any_exception(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with io.atomic_output(tmp_path / "x.npz") as tmp:
            tmp.write_bytes(b"half")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- describe


def test_describe_centred_pattern(rng):
    m = sample(rng, (16, 18))
    info = describe(m)
    assert info["shape"] == [16, 18] and info["ndim"] == 2
    assert info["masked_pixels"] == 1 and info["masked_fraction"] == pytest.approx(1 / (16 * 18))
    assert info["total_counts"] == pytest.approx(float(m.intensity[m.mask == 0].sum()))
    assert info["max_counts"] == float(m.intensity.max())
    assert all(abs(o) < 1 for o in info["centre_offset"]) and info["peak"] == [8, 9]
    assert not any("centred" in w for w in info["warnings"])
    json.dumps(info)


@pytest.mark.parametrize("shift", [(4, 0), (0, -5), (3, 4, -4)])
def test_describe_finds_the_centre_offset(shift):
    shape = (16,) * len(shift)
    grids = np.meshgrid(*[np.arange(n) - n // 2 - s for n, s in zip(shape, shift)], indexing="ij")
    blob = np.exp(-sum(g.astype(float) ** 2 for g in grids))
    info = describe(Measurement(blob))
    np.testing.assert_allclose(info["centre_offset"], shift, atol=1e-3)
    assert any("not centred" in w for w in info["warnings"])


def test_describe_warns_on_saturation(tmp_path, rng):
    data = counts(rng, (16, 16))
    data[8, 8] = 65535
    np.save(tmp_path / "sat.npy", data)
    info = describe(read_pattern(tmp_path / "sat.npy"))
    assert any("uint16 limit" in w for w in info["warnings"])
    assert info["dtype"] == "uint16"


def test_data_error_survives_pickling():
    """A worker process's DataError reaches the parent whole (process pools pickle exceptions)."""
    import pickle

    err = pickle.loads(pickle.dumps(DataError("a.npz", "no array 'data'", "save the pattern as 'data'")))
    assert isinstance(err, DataError)
    assert (err.path, err.problem, err.fix) == ("a.npz", "no array 'data'", "save the pattern as 'data'")
    assert str(err) == "a.npz: no array 'data'; save the pattern as 'data'"
