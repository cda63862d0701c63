"""Simulated far-field measurements: padding, Poisson shot noise, beamstop and detector gaps."""

from __future__ import annotations

import numpy as np

from doubledip import fft
from doubledip.io import Measurement
from doubledip.physics import FarField
from doubledip.simulate.objects import NDIM, make_object

__all__ = ["poisson_noise", "beamstop_mask", "gap_mask", "simulate_measurement", "simulate", "noise_seed"]


def poisson_noise(intensity, photons: float, *, rng: np.random.Generator) -> np.ndarray:
    r"""Poisson counts for a pattern scaled to ``photons`` expected counts in total.

    .. math:: \mu = I \, \frac{P}{\sum_k I_k}, \qquad Y_k \sim \mathrm{Poisson}(\mu_k)

    so :math:`E \sum_k Y_k = P` and the relative noise on pixel ``k`` is
    :math:`1/\sqrt{\mu_k}`.

    Parameters
    ----------
    intensity : ndarray
        Nonnegative noiseless intensity (any shape, nonzero total).
    photons : float
        Expected total count ``P > 0``.
    rng : numpy.random.Generator
        Source of the counts.

    Returns
    -------
    ndarray, float32
        The counts (integers stored as float32).
    """
    intensity = np.asarray(intensity, dtype=np.float64)
    total = intensity.sum()
    if not photons > 0:
        raise ValueError(f"photons must be positive, got {photons!r}")
    if not total > 0:
        raise ValueError("the intensity is zero everywhere; there is nothing to scale to a photon count")
    return rng.poisson(np.clip(intensity, 0, None) * (photons / total)).astype(np.float32)


def beamstop_mask(shape, radius: float) -> np.ndarray:
    """A centred disk (sphere in 3D) of ``radius`` pixels around index ``N // 2``, as a mask.

    A pixel at integer offset ``q`` from the centre is masked when
    ``|q| <= radius``; ``radius <= 0`` masks nothing, ``radius = 0.5`` only the
    central pixel.

    Returns
    -------
    ndarray, uint8
        1 on the beamstop (unmeasured), 0 elsewhere.
    """
    if radius <= 0:
        return np.zeros(shape, np.uint8)
    q2 = sum(g.astype(np.float64) ** 2 for g in fft.frequency_grid(tuple(shape)))
    return (q2 <= radius**2).astype(np.uint8)


def gap_mask(shape, count: int, *, rng: np.random.Generator, width: int = 2) -> np.ndarray:
    """Detector gaps: ``count`` masked lines (planes in 3D) of ``width`` pixels along each axis.

    The offsets are drawn from ``rng``, kept apart from each other (fewer lines
    when the axis is too short) and at least ``width + 2`` pixels from the centre
    ``N // 2``, so the gaps look like panel boundaries and do not
    erase the low frequencies (the beamstop does that).

    Returns
    -------
    ndarray, uint8
        1 in the gaps, 0 elsewhere.
    """
    mask = np.zeros(shape, np.uint8)
    if count <= 0:
        return mask
    for axis, n in enumerate(shape):
        starts = np.arange(0, n - width + 1)
        away = (starts + width - 1 < n // 2 - width - 2) | (starts > n // 2 + width + 2)
        starts = starts[away]
        if len(starts) == 0:
            continue
        for _ in range(count):
            if len(starts) == 0:
                break
            start = int(rng.choice(starts))
            starts = starts[np.abs(starts - start) > width]  # gaps never touch each other
            index = [slice(None)] * len(shape)
            index[axis] = slice(start, start + width)
            mask[tuple(index)] = 1
    return mask


def noise_seed(seed: int) -> int:
    """The seed :func:`simulate` gives the measurement, derived from the object seed (distinct streams)."""
    return int(np.random.SeedSequence([int(seed), 1]).generate_state(1)[0])


def simulate_measurement(obj_box, *, pattern_shape=None, photons: float | None = None, beamstop: float = 0.0,
                         gaps: int = 0, seed: int, meta: dict | None = None) -> Measurement:
    r"""The far-field measurement of an object box: noiseless or Poisson, with beamstop and gaps.

    The box is zero-padded, centred, into the pattern grid
    (:meth:`doubledip.physics.FarField.pad`) and
    :math:`I = |F\,P x|^2` (:mod:`doubledip.fft` convention, zero frequency at
    ``N // 2``).  With ``photons = P`` the object is scaled by
    :math:`\sqrt{P / \lVert x\rVert^2}`, so by Parseval the noiseless
    expected counts are exactly :math:`|F\,P x|^2` of the stored object and
    sum to ``P`` over the whole grid (beamstop and gaps included), then Poisson
    counts are drawn.  Masked pixels (beamstop disk, gap lines) get
    ``mask = 1`` and intensity 0.

    Parameters
    ----------
    obj_box : ndarray, complex
        The object box (1D, 2D or 3D).
    pattern_shape : tuple of int, optional
        Detector grid; default twice the box per axis (oversampling 2).
    photons : float, optional
        Expected total count; ``None`` keeps the noiseless intensity.
    beamstop : float
        Beamstop radius in pixels (0: none), see :func:`beamstop_mask`.
    gaps : int
        Number of gap lines per axis, see :func:`gap_mask`.
    seed : int
        Seed of the noise and the gap positions (``np.random.default_rng(seed)``).
    meta : dict, optional
        Extra metadata (kind, object seed) merged into ``Measurement.meta``.

    Returns
    -------
    doubledip.io.Measurement
        ``intensity`` float32, ``mask`` uint8, ``object`` complex64 (the scaled
        truth on the pattern grid), ``meta`` recording every setting and seed.
    """
    obj_box = np.asarray(obj_box)
    if pattern_shape is None:
        pattern_shape = tuple(2 * s for s in obj_box.shape)
    pattern_shape = tuple(int(s) for s in pattern_shape)
    if photons is not None and not photons > 0:
        raise ValueError(f"photons must be positive, got {photons!r}")
    if beamstop < 0 or gaps < 0:
        raise ValueError("beamstop radius and gap count must be nonnegative")
    model = FarField(pattern_shape, obj_box.shape)
    obj = model.pad(obj_box.astype(np.complex128))
    norm2 = float(np.vdot(obj, obj).real)
    if not norm2 > 0:
        raise ValueError("the object is zero everywhere")
    rng = np.random.default_rng(seed)
    if photons is not None:
        obj = obj * np.sqrt(photons / norm2)
    expected = np.abs(fft.cfft(obj, obj.ndim)) ** 2
    intensity = poisson_noise(expected, photons, rng=rng) if photons is not None else expected.astype(np.float32)
    mask = beamstop_mask(pattern_shape, beamstop) | gap_mask(pattern_shape, gaps, rng=rng)
    intensity[mask != 0] = 0
    info = {
        "simulated": True,
        "object_shape": list(obj_box.shape),
        "pattern_shape": list(pattern_shape),
        "photons": None if photons is None else float(photons),
        "beamstop": float(beamstop),
        "gaps": int(gaps),
        "noise_seed": int(seed),
        "model": "farfield",
    }
    info.update(meta or {})
    return Measurement(intensity.astype(np.float32), mask.astype(np.uint8), obj.astype(np.complex64),
                       source="simulation", meta=info)


def simulate(kind: str, size: int | None = None, *, seed: int, pattern_size: int | None = None,
             photons: float | None = None, beamstop: float = 0.0, gaps: int = 0,
             dislocation: bool = False) -> Measurement:
    """Object of ``kind`` plus its measurement in one call (what ``doubledip simulate`` does).

    The object is drawn with ``seed``; the noise and gaps with
    :func:`noise_seed` ``(seed)``, so both streams are independent and recorded.

    Parameters
    ----------
    kind : str
        ``"crystal2d"``, ``"crystal3d"`` or ``"cell2d"``.
    size : int, optional
        Object box side; default 64 in 2D, 32 in 3D.
    seed : int
        The one seed of the simulation.
    pattern_size : int, optional
        Detector side; default ``2 * size``.
    photons, beamstop, gaps
        As for :func:`simulate_measurement`.
    dislocation : bool
        Only for ``crystal2d``.
    """
    if kind not in NDIM:
        raise ValueError(f"unknown object kind '{kind}'; known kinds are {', '.join(NDIM)}")
    ndim = NDIM[kind]
    size = int(size if size is not None else (32 if ndim == 3 else 64))
    pattern_size = int(pattern_size if pattern_size is not None else 2 * size)
    if pattern_size < size:
        raise ValueError(f"pattern size {pattern_size} is smaller than the object size {size}")
    kw = {"dislocation": True} if dislocation else {}
    obj = make_object(kind, size, seed=seed, **kw)
    meta = {"kind": kind, "size": size, "seed": int(seed), "object_seed": int(seed), "dislocation": bool(dislocation)}
    return simulate_measurement(obj, pattern_shape=(pattern_size,) * ndim, photons=photons, beamstop=beamstop,
                                gaps=gaps, seed=noise_seed(seed), meta=meta)
