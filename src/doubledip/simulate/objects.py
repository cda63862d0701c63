"""Synthetic test objects: strained crystals (2D, 3D, optionally with a dislocation) and cells.

Every generator returns the *object box* (shape ``(size,) * ndim``), complex64,
exactly zero on the box border, built only from ``np.random.default_rng(seed)``.
Coordinates are relative to the box centre index ``size // 2`` so the object
sits where :func:`doubledip.physics.box_slices` expects it.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, HalfspaceIntersection

__all__ = ["crystal2d", "crystal3d", "cell2d", "KINDS", "make_object"]

EDGE_WIDTH = 1.5  # pixels over which the magnitude falls from 1 to 0 (less in tiny boxes)
MARGIN = 2.0  # pixels kept free between the object and the box border (less in tiny boxes)


def _coords(size: int, ndim: int) -> np.ndarray:
    """Pixel coordinates relative to the centre index, shape ``(ndim, size, ...)``."""
    axis = np.arange(size, dtype=np.float64) - size // 2
    return np.stack(np.meshgrid(*([axis] * ndim), indexing="ij"))


def _edge_width(size: int) -> float:
    return min(EDGE_WIDTH, size / 10)


def _max_radius(size: int) -> float:
    """Largest distance from the centre index that keeps the soft edge and a margin inside the box."""
    return min(size // 2, size - 1 - size // 2) - min(MARGIN, size / 16) - _edge_width(size) / 2


def _soft_edge(signed_distance: np.ndarray, width: float = EDGE_WIDTH) -> np.ndarray:
    """Magnitude 1 inside, 0 outside, a smoothstep of ``width`` pixels across the edge."""
    t = np.clip(0.5 - signed_distance / width, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _hull_distance(points: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Signed distance (exact inside, a lower bound outside) to the convex hull of ``points``.

    The hull is the intersection of the half-spaces ``n_i . r + b_i <= 0`` of its
    facets (unit outward normals), so ``max_i (n_i . r + b_i)`` is the distance.
    """
    eq = ConvexHull(points).equations
    normals, offsets = eq[:, :-1], eq[:, -1]
    flat = coords.reshape(coords.shape[0], -1)
    return (normals @ flat + offsets[:, None]).max(axis=0).reshape(coords.shape[1:])


def _random_rotation(ndim: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((ndim, ndim)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _strain_phase(coords: np.ndarray, weight: np.ndarray, rng: np.random.Generator,
                  scale: float, ptp: float) -> np.ndarray:
    """A smooth random phase with no linear ramp and peak-to-peak ``ptp`` where ``weight > 0.5``.

    Sum of random quadratic and cubic monomials of ``coords / scale`` and two or
    three broad Gaussian bumps.  The weighted least-squares affine part (a
    constant and a ramp, i.e. a global phase and a translation of the pattern)
    is projected out, then the remaining mean gradient weighted by
    ``weight**2``, so the diffraction pattern stays centred at ``N // 2``.
    """
    ndim = coords.shape[0]
    u = coords / scale
    phase = np.zeros(coords.shape[1:])
    for degree in (2, 3):
        for combo in itertools.combinations_with_replacement(range(ndim), degree):
            phase += rng.normal(0.0, 1.0 / degree) * np.prod([u[i] for i in combo], axis=0)
    for _ in range(rng.integers(2, 4)):
        centre = rng.uniform(-0.6, 0.6, ndim).reshape((ndim,) + (1,) * ndim)
        width = rng.uniform(0.25, 0.5)
        phase += rng.normal(0.0, 1.0) * np.exp(-((u - centre) ** 2).sum(axis=0) / (2 * width**2))

    inside = weight > 0.5
    if inside.sum() < 2:
        inside = weight > 0
    basis = np.concatenate([np.ones((1,) + phase.shape), u]).reshape(ndim + 1, -1)
    w = np.sqrt(weight.ravel())
    coef, *_ = np.linalg.lstsq((basis * w).T, phase.ravel() * w, rcond=None)
    phase = phase - (coef @ basis).reshape(phase.shape)
    # Zero |x|^2-weighted mean phase gradient: the pattern's centre of mass stays at N // 2.
    w2 = weight**2
    for axis, grad in enumerate(np.gradient(phase)):
        phase = phase - coords[axis] * (w2 * grad).sum() / w2.sum()
    span = np.ptp(phase[inside])
    if not span > 1e-12:
        return np.zeros_like(phase)
    phase = phase * (ptp / span)
    return phase - phase[inside].mean()


def _polygon_points(radius: float, rng: np.random.Generator) -> np.ndarray:
    """Vertices of a random convex polygon within ``radius`` of the origin (5 to 9 on a rotated ellipse)."""
    k = int(rng.integers(5, 10))
    angles = 2 * np.pi * (np.arange(k) + rng.uniform(0.0, 0.7, k)) / k + rng.uniform(0, 2 * np.pi)
    directions = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    anisotropy = np.array([1.0, rng.uniform(0.6, 1.0)])
    return radius * (directions * anisotropy) @ _random_rotation(2, rng).T


def _polyhedron_distance(radius: float, rng: np.random.Generator, coords: np.ndarray) -> np.ndarray:
    """Signed distance to a random convex polyhedron: the intersection of 8 to 14 half-spaces.

    The outward normals are jittered, evenly spread (Fibonacci) directions;
    each plane touches a randomly rotated ellipsoid (axis ratios 0.7-1) up to
    +-10 %; the polyhedron is then scaled so that its vertices lie within
    ``radius`` of the centre along every axis.
    """
    k = int(rng.integers(8, 15))
    i = np.arange(k) + 0.5
    z = 1 - 2 * i / k
    azimuth = np.pi * (1 + 5**0.5) * i
    normals = np.stack([z, np.sqrt(1 - z**2) * np.cos(azimuth), np.sqrt(1 - z**2) * np.sin(azimuth)], 1)
    normals += rng.normal(0.0, 0.15, normals.shape)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    axes = np.array([1.0, *rng.uniform(0.7, 1.0, 2)])
    rotation = _random_rotation(3, rng)
    offsets = np.linalg.norm((normals @ rotation) * axes, axis=1) * rng.uniform(0.9, 1.1, k)
    vertices = HalfspaceIntersection(np.c_[normals, -offsets], np.zeros(3)).intersections
    offsets *= radius / np.abs(vertices).max()
    flat = coords.reshape(3, -1)
    return (normals @ flat - offsets[:, None]).max(axis=0).reshape(coords.shape[1:])


def _check_size(size, minimum: int = 4) -> int:
    if int(size) != size or size < minimum:
        raise ValueError(f"object size must be an integer >= {minimum}, got {size!r}")
    return int(size)


def _crystal(size: int, ndim: int, rng: np.random.Generator):
    coords = _coords(size, ndim)
    radius = min(rng.uniform(0.3, 0.45) * size, _max_radius(size))
    if ndim == 2:
        sd = _hull_distance(_polygon_points(radius, rng), coords)
    else:
        sd = _polyhedron_distance(radius, rng, coords)
    magnitude = _soft_edge(sd, _edge_width(size))
    phase = _strain_phase(coords, magnitude, rng, radius, rng.uniform(2.0, 4.0))
    return coords, sd, magnitude, phase


def crystal2d(size: int, *, seed: int, dislocation: bool = False) -> np.ndarray:
    r"""A strained 2D crystal: a random convex polygon with a smooth strain phase.

    The magnitude is 1 inside a random convex polygon (5 to 9 vertices on a
    randomly rotated ellipse of radius 0.3-0.45 ``size``, axis ratio 0.6-1)
    and falls to 0 over about one pixel (smoothstep of the signed distance).
    The phase is a smooth strain field :math:`\phi(r)` (random quadratic and
    cubic terms and broad bumps) with peak-to-peak 2-4 rad inside the crystal
    and no linear ramp, since a ramp only translates the diffraction pattern
    (Bragg CDI: Robinson & Harder, Nature Materials 8, 291 (2009)).

    With ``dislocation=True`` a phase vortex :math:`\pm\operatorname{atan2}(y - y_c, x - x_c)`
    (winding number :math:`\pm 1`) is added around a core inside the crystal,
    at least 4 pixels and a quarter of the inradius from the edge (less in
    tiny boxes), off the pixel centres, and the magnitude dips to 0 at the
    core over about 2 pixels, :math:`1 - e^{-|r - r_c|^2 / 4}`.

    Parameters
    ----------
    size : int
        Side of the object box (>= 4).
    seed : int
        Seed of every random choice.
    dislocation : bool
        Add an edge-dislocation-like phase vortex.

    Returns
    -------
    ndarray, complex64, shape ``(size, size)``
        Zero outside the crystal and on the box border.
    """
    size = _check_size(size)
    rng = np.random.default_rng(seed)
    coords, sd, magnitude, phase = _crystal(size, 2, rng)
    if dislocation:
        depth = -sd
        candidates = np.argwhere(depth >= max(0.25 * depth.max(), min(4.0, 0.8 * depth.max())))
        core = candidates[rng.integers(len(candidates))] - size // 2 + rng.uniform(0.25, 0.75, 2)
        dy, dx = coords[0] - core[0], coords[1] - core[1]
        phase = phase + rng.choice([-1.0, 1.0]) * np.arctan2(dy, dx)
        magnitude = magnitude * (1.0 - np.exp(-(dy**2 + dx**2) / 4.0))
    return (magnitude * np.exp(1j * phase)).astype(np.complex64)


def crystal3d(size: int, *, seed: int) -> np.ndarray:
    r"""A strained 3D crystal: a random convex polyhedron with a smooth strain phase.

    The polyhedron is the intersection of 8 to 14 half-spaces with jittered,
    evenly spread normals, tangent (+-10 %) to a randomly rotated ellipsoid
    (axis ratios 0.7-1), scaled to reach 0.3-0.45 ``size`` from the centre
    along its longest axis; the magnitude is 1 inside with a soft edge of about one pixel, and the phase a
    smooth 3D strain field (quadratic and cubic terms and broad bumps, no
    linear ramp) with peak-to-peak 2-4 rad inside.

    Parameters
    ----------
    size : int
        Side of the cubic object box (>= 4).
    seed : int
        Seed of every random choice.

    Returns
    -------
    ndarray, complex64, shape ``(size, size, size)``
    """
    size = _check_size(size)
    rng = np.random.default_rng(seed)
    _, _, magnitude, phase = _crystal(size, 3, rng)
    return (magnitude * np.exp(1j * phase)).astype(np.complex64)


def _smooth_noise(shape, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian-filtered white noise scaled to unit standard deviation."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return field / field.std()


def _ellipse_distance(coords, centre, axes, angle, wobble=None):
    """Approximate signed distance (pixels) to a rotated ellipse with an optional radial wobble."""
    dy, dx = coords[0] - centre[0], coords[1] - centre[1]
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * dx + s * dy, -s * dx + c * dy
    rho = np.hypot(u / axes[0], v / axes[1])
    if wobble is not None:
        theta = np.arctan2(v, u)
        rho = rho / (1 + sum(a * np.cos(k * theta + p) for k, a, p in wobble))
    return (rho - 1.0) * min(axes)


def cell2d(size: int, *, seed: int) -> np.ndarray:
    r"""A biological-cell-like 2D object for plane-wave CDI.

    Real part (electron density, nonnegative): a soft-edged, slightly wobbly
    ellipse (the cell body, density 0.5 with +-10 % smooth texture), a denser
    nucleus (+0.5) holding a nucleolus (+0.3), and 4-9 small organelle blobs
    (+0.2 to +0.5) in the cytoplasm.  Imaginary part (absorption): 0.05-0.15
    times the real part, modulated by its own smooth texture, so it is small
    and structured.  Weak-phase, thin biological specimens scatter like this
    (Miao et al., PNAS 100, 110 (2003); Shapiro et al., PNAS 102, 15343 (2005)).

    Parameters
    ----------
    size : int
        Side of the object box (>= 4).
    seed : int
        Seed of every random choice.

    Returns
    -------
    ndarray, complex64, shape ``(size, size)``
        Zero outside the cell body and on the box border.
    """
    size = _check_size(size)
    rng = np.random.default_rng(seed)
    coords = _coords(size, 2)
    rmax = _max_radius(size)
    a = rng.uniform(0.3, 0.42) * size
    axes = (min(a, rmax / 1.08), min(a * rng.uniform(0.65, 0.95), rmax / 1.08))
    wobble = [(k, rng.uniform(0.0, 0.025), rng.uniform(0, 2 * np.pi)) for k in (2, 3, 4)]
    angle = rng.uniform(0, np.pi)
    edge = _edge_width(size)
    body = _soft_edge(_ellipse_distance(coords, (0.0, 0.0), axes, angle, wobble), edge)

    sigma = max(size / 16, 1.0)
    density = 0.5 * (1 + 0.1 * _smooth_noise(body.shape, sigma, rng))

    # Nucleus: an ellipse well inside the body, offset from the centre.
    n_axes = (axes[0] * rng.uniform(0.3, 0.4), axes[1] * rng.uniform(0.3, 0.4))
    offset = rng.uniform(-0.25, 0.25, 2) * np.array(axes)[::-1]
    nucleus = _soft_edge(_ellipse_distance(coords, offset, n_axes, rng.uniform(0, np.pi)), edge)
    density += 0.5 * nucleus
    nucleolus_axes = (max(n_axes[0] * 0.35, 1.0), max(n_axes[1] * 0.35, 1.0))
    density += 0.3 * _soft_edge(_ellipse_distance(coords, offset + rng.uniform(-0.3, 0.3, 2) * min(n_axes),
                                                  nucleolus_axes, 0.0), edge)

    # Organelles: small blobs in the cytoplasm (inside the body, outside the nucleus).
    cytoplasm = np.argwhere((body > 0.99) & (nucleus < 0.01)) - size // 2
    for _ in range(int(rng.integers(4, 10))):
        if len(cytoplasm) == 0:
            break
        centre = cytoplasm[rng.integers(len(cytoplasm))]
        width = rng.uniform(0.02, 0.05) * size + 0.5
        r2 = (coords[0] - centre[0]) ** 2 + (coords[1] - centre[1]) ** 2
        density += rng.uniform(0.2, 0.5) * np.exp(-r2 / (2 * width**2))

    real = np.clip(density, 0.0, None) * body
    absorption = rng.uniform(0.05, 0.15) * (1 + 0.25 * _smooth_noise(body.shape, sigma, rng))
    imag = real * np.clip(absorption, 0.02, 0.2)
    return (real + 1j * imag).astype(np.complex64)


KINDS = {"crystal2d": crystal2d, "crystal3d": crystal3d, "cell2d": cell2d}
"""Object generators by name: ``KINDS[kind](size, seed=...)``."""

NDIM = {"crystal2d": 2, "crystal3d": 3, "cell2d": 2}


def make_object(kind: str, size: int, *, seed: int, **kw) -> np.ndarray:
    """The object box of kind ``kind`` (a key of :data:`KINDS`); extra keywords go to the generator.

    Raises
    ------
    ValueError
        Unknown kind (the message lists the known ones) or an option the
        generator does not take.
    """
    try:
        generator = KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown object kind '{kind}'; known kinds are {', '.join(KINDS)}") from None
    try:
        return generator(size, seed=seed, **kw)
    except TypeError as err:
        raise ValueError(f"object kind '{kind}' does not take {', '.join(kw)} ({err})") from None
