"""DIP generators and complex parameterizations: shapes, seeding, heads."""

import math

import pytest
import torch

from doubledip.dip import ComplexDIP, Generator


@pytest.mark.parametrize("kind", ["decoder", "skip"])
@pytest.mark.parametrize("shape", [(16, 16), (9, 13), (8, 8, 8), (5, 7, 6)])
def test_output_shape_2d_3d_odd(kind, shape):
    g = Generator(shape, 3, kind=kind, width=4, depth=2)
    out = g()
    assert out.shape == (3,) + shape
    assert torch.isfinite(out).all()
    conv = torch.nn.Conv3d if len(shape) == 3 else torch.nn.Conv2d
    assert any(isinstance(m, conv) for m in g.modules())


def test_global_rng_untouched_and_seeded():
    state = torch.random.get_rng_state()
    a = Generator((16, 16), 2, width=4, depth=2, seed=5)
    b = Generator((16, 16), 2, width=4, depth=2, seed=5)
    c = Generator((16, 16), 2, width=4, depth=2, seed=6)
    assert torch.equal(state, torch.random.get_rng_state())
    assert torch.equal(a(), b())
    assert not torch.equal(a(), c())


def test_input_noise_uses_given_generator():
    g = Generator((8, 8), 1, width=4, depth=2)
    r1, r2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(g(0.1, r1), g(0.1, r2))
    assert not torch.equal(g(0.1, r1), g())


def test_mag_phase_magnitude_bounded_by_scale():
    m = ComplexDIP((12, 12), width=4, depth=2, scale=3.0)
    x = m()
    assert x.dtype == torch.complex64 and x.shape == (12, 12)
    assert float(x.detach().abs().max()) <= 3.0 + 1e-5


def test_unit_head_carries_a_vortex():
    """A smooth (c, t) field through zero gives a phase winding of 2*pi around the zero."""
    m = ComplexDIP((15, 15), width=4, depth=2, phase_head="unit")
    y, x = torch.meshgrid(torch.arange(15.0) - 7, torch.arange(15.0) - 7, indexing="ij")
    x_obj = m.compose([torch.full((1, 15, 15), 5.0), torch.stack([x, y])]).detach()
    ring = [(2, 0), (2, 2), (0, 2), (-2, 2), (-2, 0), (-2, -2), (0, -2), (2, -2), (2, 0)]
    phases = [float(torch.angle(x_obj[7 + dy, 7 + dx])) for dx, dy in ring]
    winding = sum((b - a + math.pi) % (2 * math.pi) - math.pi for a, b in zip(phases, phases[1:]))
    assert abs(abs(winding) - 2 * math.pi) < 1e-4
    assert float(x_obj.abs()[7, 7]) < 0.1 * float(x_obj.abs().max())


@pytest.mark.parametrize("param", ["real-imag", "single"])
def test_nonnegative_real_part(param):
    m = ComplexDIP((10, 10), parameterization=param, nonneg_real=True, width=4, depth=2, seed=3)
    assert float(m().real.min()) >= 0
    assert len(m.generators) == (1 if param == "single" else 2)


def test_single_network_option():
    m = ComplexDIP((10, 10), parameterization="mag-phase", networks=1, width=4, depth=2)
    assert len(m.generators) == 1 and m().shape == (10, 10)


def test_bad_choices_raise():
    with pytest.raises(ValueError, match="parameterization"):
        ComplexDIP((8, 8), parameterization="polar")
    with pytest.raises(ValueError, match="kind"):
        Generator((8, 8), 1, kind="unet")
