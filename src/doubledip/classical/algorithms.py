r"""One iteration of each classical algorithm, as small operators on an :class:`~doubledip.classical.engine.Engine`.

Notation: :math:`x` is the iterate (one per start, batched), :math:`P_M` the
modulus projection and :math:`P_S` the object projection of
:mod:`doubledip.classical.projections`, :math:`y = P_M x`, :math:`R = 2P - I`
a reflection and :math:`\beta` the engine's ``beta``.  With a support-only
object constraint :math:`P_S x = s \odot x` (``s`` the boolean support) and the
updates below select with ``s`` in place (few passes); with positivity or a
real object the same formulas use the part-wise keep mask of
:func:`~doubledip.classical.projections.object_keep`.

ER, HIO and RAAR share one object-space step (``_object_step``), which on the
CPU runs as one fused loop (:func:`doubledip.classical.fused.object_update_`,
same arithmetic) when the engine's ``fused`` is set.

Every operator returns ``(loss, free_loss)``: the normalised Fourier errors of
the iterate it started from (shape ``(starts,)``).
"""

from __future__ import annotations

import torch

from doubledip.classical import fused
from doubledip.classical.projections import fourier_errors, object_keep
from doubledip.classical.support import shrink_wrap, sigma_schedule

__all__ = ["OPERATORS", "error_reduction", "hybrid_input_output", "raar", "difference_map", "oss", "shrink_wrap_step"]


def _keep(engine, z: torch.Tensor) -> torch.Tensor:
    return object_keep(z, engine.support, positivity=engine.options.positivity, real=engine.options.real)


def _mask_(engine, z: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """``z`` times the support (or the part-wise keep mask), in place."""
    if keep is None:
        return torch.where(engine.support, z, z.new_zeros(()), out=z)
    torch.view_as_real(z).mul_(keep)
    return z


def _blend_(engine, base: torch.Tensor, target: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """``base <- base + k * (target - base)`` in place: ``target`` where kept, ``base`` elsewhere."""
    if keep is None:
        return torch.where(engine.support, target, base, out=base)
    torch.view_as_real(base).lerp_(torch.view_as_real(target), keep)
    return base


def _object_step(engine, y: torch.Tensor, *, alpha: float, gamma: float, reflect: bool = False) -> None:
    r"""The object-space step of ER, HIO and RAAR, in place on ``engine.x``.

    :math:`x \leftarrow y` where the test point (:math:`y`, or :math:`2y - x` with
    ``reflect``) satisfies the object constraint, :math:`\alpha x + \gamma y` elsewhere
    -- one fused loop on the CPU when the engine's ``fused`` is set
    (:func:`doubledip.classical.fused.object_update_`).
    """
    x, o = engine.x, engine.options
    if engine.fused:
        fused.object_update_(x, y, engine.support, alpha=alpha, gamma=gamma, reflect=reflect,
                             positivity=o.positivity, real=o.real)
        return
    keep = _keep(engine, 2 * y - x if reflect else y) if engine.constrained else None
    if alpha == 0 and gamma == 0:
        x.zero_()
    else:
        if alpha != 1:
            x.mul_(alpha)
        x.add_(y, alpha=gamma)
    _blend_(engine, x, y, keep)


def error_reduction(engine):
    r"""Error reduction: :math:`x \leftarrow P_S P_M x` (Fienup 1982).

    Alternating projections; the Fourier error :math:`\|P_M x - x\|` never increases
    once the iterate lies in :math:`S`.
    """
    y, loss, free = engine.fourier(engine.x)
    _object_step(engine, y, alpha=0.0, gamma=0.0)
    return loss, free


def hybrid_input_output(engine):
    r"""Hybrid input-output (J. R. Fienup, Appl. Opt. 21, 2758 (1982)).

    .. math:: x \leftarrow \begin{cases} y & \text{where } y \text{ satisfies the object constraint} \\
              x - \beta y & \text{elsewhere} \end{cases}
    """
    y, loss, free = engine.fourier(engine.x)
    _object_step(engine, y, alpha=1.0, gamma=-engine.options.beta)
    return loss, free


def raar(engine):
    r"""Relaxed averaged alternating reflections (D. R. Luke, Inverse Problems 21, 37 (2005)).

    .. math:: x \leftarrow \tfrac{\beta}{2}(R_S R_M + I)x + (1 - \beta) P_M x
              = \beta P_S(2y - x) + \beta x + (1 - 2\beta) y,

    i.e. :math:`y` where :math:`2y - x` satisfies the object constraint and
    :math:`t = \beta x + (1 - 2\beta) y` elsewhere.
    """
    beta = engine.options.beta
    y, loss, free = engine.fourier(engine.x)
    _object_step(engine, y, alpha=beta, gamma=1 - 2 * beta, reflect=True)
    return loss, free


def difference_map(engine):
    r"""Difference map (V. Elser, JOSA A 20, 40 (2003)) with :math:`\gamma_S = -1/\beta`, :math:`\gamma_M = 1/\beta`.

    .. math:: x \leftarrow x + \beta\,[P_S f_M(x) - P_M f_S(x)],\quad
              f_S = (1 - \tfrac1\beta) P_S + \tfrac1\beta I,\quad
              f_M = (1 + \tfrac1\beta) P_M - \tfrac1\beta I.

    With :math:`\beta = 1` it is HIO with :math:`\beta = 1` (Douglas-Rachford).
    Two Fourier transform pairs per iteration and one extra pattern-sized array.
    """
    beta = engine.options.beta
    x = engine.x
    a = engine.buffer("dm")
    if engine.constrained:
        a.copy_(x)
        _mask_(engine, a, _keep(engine, x))
    else:
        torch.where(engine.support, x, x.new_zeros(()), out=a)
    a.mul_(1 - 1 / beta).add_(x, alpha=1 / beta)
    pa, _, _ = engine.fourier(a)
    if pa is not a:
        a.copy_(pa)
    y, loss, free = engine.fourier(x)
    y.mul_(1 + 1 / beta).sub_(x, alpha=1 / beta)
    _mask_(engine, y, _keep(engine, y) if engine.constrained else None)
    x.add_(y.sub_(a), alpha=beta)
    return loss, free


def oss(engine):
    r"""Oversampling smoothness (J. A. Rodriguez, R. Xu, C.-C. Chen, Y. Zou & J. Miao, J. Appl. Cryst. 46, 312 (2013)).

    An HIO step, then the region outside the support is replaced by its
    low-pass version :math:`F^{-1}[W \odot F x]`, with
    :math:`W(k) = \exp(-\tfrac12 \sum_a (k_a / \alpha_a)^2)` and
    :math:`\alpha_a` going linearly from :math:`2 N_a` to :math:`0.2 N_a` in
    ``oss_stages`` stages over the planned OSS iterations.  At the end of each
    stage the iterate with the lowest Fourier error of that stage is restored,
    as in the authors' code.  Two transform pairs and one extra array.
    """
    beta = engine.options.beta
    x = engine.x
    stage, last = engine.oss_stage()
    best = engine.buffer("oss")
    y, loss, free = engine.fourier(x)
    if engine.oss_best_loss is None:
        engine.oss_best_loss = torch.full_like(loss, float("inf"))
    better = loss < engine.oss_best_loss
    engine.oss_best_loss = torch.where(better, loss, engine.oss_best_loss)
    worse = (~better).to(x.dtype).view((-1,) + (1,) * engine.ndim)
    best.sub_(x).mul_(worse).add_(x)  # best <- x where this start improved
    keep = _keep(engine, y) if engine.constrained else None
    x.sub_(y, alpha=beta)
    _blend_(engine, x, y, keep)
    X = engine.transform(x)
    X.mul_(engine.oss_filter(stage))
    smooth = engine.inverse(X)
    torch.where(engine.support, x, smooth, out=x)  # smoothed outside, unchanged inside
    if last:
        x.copy_(best)
        engine.oss_best_loss = None
    return loss, free


def shrink_wrap_step(engine):
    r"""Shrink-wrap (S. Marchesini et al., Phys. Rev. B 68, 140101 (2003)), guarded.

    Blur :math:`|P_S x|` with a Gaussian and threshold at each start's
    ``sw_threshold`` times its maximum; the width follows
    :func:`~doubledip.classical.support.sigma_schedule` from ``sw_sigma_start``
    to ``sw_sigma_end`` over the planned updates.  Before the update the
    engine's :class:`~doubledip.classical.support.SupportGuard` compares the
    Fourier error of :math:`P_S x` with the best so far and backs off from a
    collapsing support; after it, it refuses an exploding one.  One transform
    per update; not an iteration (returns ``None``).
    """
    o = engine.options
    # rare: temporaries rather than buffers held for the whole run
    loss, _ = fourier_errors(torch.fft.fftn(engine.project(engine.x), dim=engine.dims, norm="ortho"), engine.data)
    support, update = engine.guard.check(engine.support, loss)
    sigma = sigma_schedule(engine.sw_done, engine.sw_total, o.sw_sigma_start, o.sw_sigma_end)
    new = shrink_wrap(engine.x, support, sigma=sigma, threshold=engine.guard.threshold, ndim=engine.ndim)
    new = engine.guard.accept(support, new, engine.ndim)
    view = (-1,) + (1,) * engine.ndim
    engine.set_support(torch.where(update.view(view), new, support))
    engine.sw_done += 1
    return None


OPERATORS = {
    "ER": error_reduction,
    "HIO": hybrid_input_output,
    "RAAR": raar,
    "DM": difference_map,
    "OSS": oss,
    "SW": shrink_wrap_step,
}
"""Recipe name -> operator ``op(engine) -> (loss, free_loss) | None``."""
