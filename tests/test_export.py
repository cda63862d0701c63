"""VTK export: files ParaView can open (checked by reading them back), displacement, the export command."""

import numpy as np
import pytest

from doubledip.errors import DataError
from doubledip.export import crop_to_support, displacement_field, export_vti, read_vti
from doubledip.io import write_result
from doubledip.result import Result


def _object(shape, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(np.complex64)


def test_export_3d_round_trip(tmp_path):
    obj = _object((5, 6, 7))
    support = np.abs(obj) > 0.8
    path = export_vti(tmp_path / "x.vti", obj, support=support, voxel_size=(1.0, 2.0, 3.0), bragg=(0.0, 0.0, 2.0))
    data = read_vti(path)
    assert data["extent"] == [0, 6, 0, 5, 0, 4]  # VTK x, y, z = array X, Y, Z
    assert data["spacing"] == [3.0, 2.0, 1.0]
    assert data["origin"] == [-9.0, -6.0, -2.0]  # index N//2 at coordinate 0
    arrays = data["arrays"]
    assert list(arrays) == ["magnitude", "phase", "support", "displacement"]
    assert arrays["magnitude"].dtype == np.float32 and arrays["support"].dtype == np.uint8
    assert np.allclose(arrays["magnitude"], np.abs(obj)) and np.allclose(arrays["phase"], np.angle(obj))
    assert np.array_equal(arrays["support"], support)
    u = arrays["displacement"]
    assert np.allclose(u[support], np.angle(obj)[support] / 2.0) and np.isnan(u[~support]).all()
    header = path.read_bytes()[:200]
    assert b'<VTKFile type="ImageData"' in header
    assert [p.name for p in tmp_path.iterdir()] == ["x.vti"]  # no temporary folder left


def test_export_2d_is_one_slice(tmp_path):
    obj = _object((6, 9))
    data = read_vti(export_vti(tmp_path / "y.vti", obj))
    assert data["extent"] == [0, 8, 0, 5, 0, 0]
    assert data["arrays"]["magnitude"].shape == (6, 9)
    assert np.allclose(data["arrays"]["magnitude"], np.abs(obj))
    assert data["arrays"]["support"].all()


def test_export_crop_keeps_coordinates(tmp_path):
    obj = _object((10, 12))
    support = np.zeros((10, 12), bool)
    support[3:6, 4:9] = True
    assert crop_to_support(support, margin=1) == (slice(2, 7), slice(3, 10))
    data = read_vti(export_vti(tmp_path / "c.vti", obj, support=support, crop=1, voxel_size=2.0))
    assert data["arrays"]["magnitude"].shape == (5, 7)
    assert data["origin"][:2] == [(3 - 6) * 2.0, (2 - 5) * 2.0]
    assert np.allclose(data["arrays"]["magnitude"], np.abs(obj[2:7, 3:10]))


def test_export_refuses_other_suffixes_and_missing_folders(tmp_path):
    with pytest.raises(DataError, match=r"\.vti"):
        export_vti(tmp_path / "x.vtk", _object((4, 4)))
    with pytest.raises(DataError, match="does not exist"):
        export_vti(tmp_path / "missing" / "x.vti", _object((4, 4)))
    assert list(tmp_path.iterdir()) == []


def test_displacement_is_phase_over_the_bragg_norm():
    obj = np.exp(1j * np.linspace(-3, 3, 12)).reshape(3, 4)
    support = np.ones((3, 4), bool)
    support[0, 0] = False
    u = displacement_field(obj, (3.0, 0.0, 4.0), support=support)
    assert np.allclose(u[support], np.angle(obj)[support] / 5.0) and np.isnan(u[0, 0])
    assert np.allclose(displacement_field(obj, 5.0, sign=-1)[support], -u[support])
    with pytest.raises(ValueError):
        displacement_field(obj, (0, 0, 0))


def test_unwrapped_displacement_has_no_jumps():
    x = np.arange(16)
    obj = np.exp(1j * 0.9 * x)[None, :].repeat(3, axis=0)
    u = displacement_field(obj, 1.0, unwrap=True)
    assert np.allclose(np.diff(u, axis=1), 0.9, atol=1e-5)


# --------------------------------------------------------------------------- command line


@pytest.fixture
def result_file(tmp_path):
    z, y, x = np.indices((8, 8, 8))
    obj = np.where((abs(z - 4) < 3) & (abs(y - 4) < 3) & (abs(x - 4) < 3), np.exp(1j * 0.3 * x), 0)
    path = tmp_path / "result.npz"
    write_result(path, Result(obj, np.abs(obj) > 0, {"loss": np.linspace(1, 0.1, 5)}, {"method": "test"}, 0,
                              {"total": 1.0}))
    return path


def test_export_command(tmp_path, run_cli, result_file):
    out_path, figure = tmp_path / "r.vti", tmp_path / "r.png"
    code, out, err = run_cli("export", result_file, "-o", out_path, "--bragg", "0,0,2", "--voxel-size", "5",
                             "--remove-ramp", "--centre", "--zero-phase", "--unwrap", "--figure", figure)
    assert code == 0, err
    assert "wrote" in out and "|G| = 2" in out
    data = read_vti(out_path)
    assert data["spacing"] == [5.0, 5.0, 5.0]
    assert set(data["arrays"]) == {"magnitude", "phase", "support", "displacement"}
    u = data["arrays"]["displacement"][data["arrays"]["support"] == 1]
    assert np.ptp(u) < 1e-5  # the ramp was the whole phase
    assert figure.exists() and (tmp_path / "r_displacement.png").exists()


@pytest.mark.parametrize("argv, message", [
    (["--bragg", "1,2"], "--bragg"),
    (["--voxel-size", "0"], "--voxel-size"),
    (["--voxel-size", "1,2"], "--voxel-size"),
    (["--apodize", "box"], "--apodize"),
    (["--crop", "x"], "--crop"),
])
def test_export_command_errors_are_one_line(tmp_path, run_cli, result_file, argv, message):
    code, _, err = run_cli("export", result_file, "-o", tmp_path / "r.vti", *argv)
    assert code == 2 and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "r.vti").exists()


def test_export_command_refuses_other_files(tmp_path, run_cli, result_file):
    code, _, err = run_cli("export", result_file, "-o", tmp_path / "r.vtk")
    assert code == 2 and ".vti" in err
    code, _, err = run_cli("export", tmp_path / "missing.npz", "-o", tmp_path / "r.vti")
    assert code == 2 and "missing.npz" in err and len(err.strip().splitlines()) == 1
