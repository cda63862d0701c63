r"""The kernel generator: a nonnegative ``K x K`` kernel summing to one.

The kernel is a softmax over an overspecified grid,
:math:`k = \mathrm{softmax}(\ell)`, so it is nonnegative and sums to one by
construction, and its logits come from either

* ``"fcn"`` -- a fully connected network from a fixed random input,
  :math:`\ell = W_2\,\mathrm{ReLU6}(W_1 z + b_1) + b_2` (the kernel prior of
  SelfDeblur: Ren, Zhang, Wang, Hu & Zuo, "Neural blind deconvolution using deep
  priors", CVPR 2020), or
* ``"free"`` -- a free logit map :math:`\ell`.

**Against collapse** to the delta (no-blur) solution, the logits start as the log
of a broad isotropic Gaussian, :math:`\ell_0(r) = -|r|^2 / (2\sigma_0^2)` with
:math:`\sigma_0` = ``init_sigma`` times the kernel side; the image generator
then starts by explaining the data with a *sharper* image instead of the blurry
one.  In the FCN the Gaussian sits in :math:`b_2` and :math:`W_2` starts small,
so the network initially outputs that Gaussian.

``lr_scale`` sets the kernel's learning rate relative to the image's while both
share one Adam optimiser: Adam's step is invariant to the scale of the
gradient, so storing the weights as :math:`\theta / s` and using
:math:`s\,\theta` scales every step on :math:`\theta` by :math:`s`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["KernelGenerator", "KERNEL_GENERATORS", "gaussian_logits"]

KERNEL_GENERATORS = ("fcn", "free")


def gaussian_logits(size: int, sigma: float) -> torch.Tensor:
    r"""Log of an isotropic Gaussian on ``size x size`` centred at ``size // 2``: :math:`-|r|^2 / (2\sigma^2)`."""
    r = torch.arange(size, dtype=torch.float32) - size // 2
    r2 = r[:, None] ** 2 + r[None, :] ** 2
    return -r2 / (2 * max(float(sigma), 1e-3) ** 2)


class _Scaled(nn.Module):
    """A tensor stored as ``value / scale`` and read as ``scale * stored``."""

    def __init__(self, value: torch.Tensor, scale: float):
        super().__init__()
        self.scale = float(scale)
        self.stored = nn.Parameter(value / self.scale)

    def forward(self):
        return self.stored * self.scale


class KernelGenerator(nn.Module):
    r"""A generator of blur kernels of side ``size`` (nonnegative, sums to one).

    Parameters
    ----------
    size : int
        Kernel side (odd; the user's upper bound on the true kernel size).
    kind : {"fcn", "free"}
        Fully connected network (SelfDeblur) or a free logit map.
    hidden : int
        Hidden units of the FCN.
    input_size : int
        Length of the FCN's fixed random input.
    init_sigma : float
        Width of the initial Gaussian kernel relative to ``size``.
    lr_scale : float
        Learning-rate factor of the kernel's parameters (see the module notes).
    seed : int
        Seed of the weights and of the input.
    init : array, optional
        A ``(size, size)`` kernel to start from instead of the Gaussian: the initial
        logits are :math:`\log(k_0 + \epsilon)` with :math:`\epsilon = 10^{-3} \max k_0`,
        so entries that start at zero stay small (softmax gradients scale with the
        entry) -- the initial estimate also acts as a soft support constraint.

    Notes
    -----
    ``forward(noise_std=0.0, generator=None)`` returns the ``(size, size)`` kernel; the
    input-noise arguments are accepted for the protocol of
    :func:`doubledip.dip.fitting.fit` and ignored (the kernel input stays fixed).
    """

    def __init__(self, size: int, *, kind: str = "fcn", hidden: int = 512, input_size: int = 200,
                 init_sigma: float = 0.15, lr_scale: float = 1.0, seed: int = 0, init=None):
        super().__init__()
        if kind not in KERNEL_GENERATORS:
            raise ValueError(f"unknown kernel generator '{kind}'; use {', '.join(KERNEL_GENERATORS)}")
        self.size, self.kind = int(size), kind
        rng = torch.Generator().manual_seed(int(seed))
        if init is None:
            prior = gaussian_logits(self.size, init_sigma * self.size).flatten()
        else:
            k0 = torch.as_tensor(init, dtype=torch.float32).clamp_min(0)
            if tuple(k0.shape) != (self.size, self.size) or not float(k0.max()) > 0:
                raise ValueError(f"init must be a nonnegative ({self.size}, {self.size}) kernel with a positive entry")
            prior = torch.log(k0 + 1e-3 * k0.max()).flatten()
        if kind == "free":
            self.logits = _Scaled(prior, lr_scale)
            return
        z = torch.rand(input_size, generator=rng)
        self.register_buffer("z", z)
        bound1 = math.sqrt(6.0 / input_size)
        w1 = (torch.rand(hidden, input_size, generator=rng) * 2 - 1) * bound1
        bound2 = 1e-2 * math.sqrt(6.0 / hidden)
        w2 = (torch.rand(self.size**2, hidden, generator=rng) * 2 - 1) * bound2
        self.w1, self.b1 = _Scaled(w1, lr_scale), _Scaled(torch.zeros(hidden), lr_scale)
        self.w2, self.b2 = _Scaled(w2, lr_scale), _Scaled(prior, lr_scale)

    def logit_map(self) -> torch.Tensor:
        """The logits :math:`\\ell`, flattened."""
        if self.kind == "free":
            return self.logits()
        h = torch.clamp(self.w1() @ self.z + self.b1(), 0.0, 6.0)
        return self.w2() @ h + self.b2()

    def forward(self, noise_std: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.softmax(self.logit_map(), dim=0).reshape(self.size, self.size)
