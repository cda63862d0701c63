"""Untrained generators for deep image priors, 2D and 3D.

A generator maps a fixed random input ``z`` to an image (or volume) with a few
channels; its weights are the unknowns of the inverse problem and the
architecture is the prior (Ulyanov, Vedaldi & Lempitsky, "Deep image prior",
CVPR 2018 / IJCV 128, 1867 (2020)).  Two families:

* ``"decoder"`` -- a decoder only, from a coarse ``z`` by repeated
  (upsample, 3x3 convolution, normalisation, activation) blocks, close to the
  deep decoder (Heckel & Hand, ICLR 2019).  Cheap and smooth.
* ``"skip"`` -- the DIP encoder-decoder ("hourglass") with skip connections
  from a full-resolution ``z``.

Convolutions are ``Conv2d`` or ``Conv3d`` chosen by ``ndim``.  Weights are
initialised from a :class:`torch.Generator` seeded with ``seed``; building a
generator leaves torch's global random state untouched.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["Generator", "conv_layer"]

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_LINEAR_MODE = {1: "linear", 2: "bilinear", 3: "trilinear"}


def conv_layer(ndim: int, cin: int, cout: int, kernel: int, *, stride: int = 1, rng: torch.Generator) -> nn.Module:
    """A ``ndim``-D convolution with 'same' edge-replicating padding, initialised from ``rng``.

    Weights are uniform in :math:`\\pm\\sqrt{6 / ((1 + a^2)\\, \\mathrm{fan\\_in})}` (He
    initialisation for a leaky ReLU of slope :math:`a = 0.2`), biases zero.  The module is
    built without running torch's default initialiser, which would draw from the
    global random state.
    """
    conv = nn.utils.skip_init(
        _CONV[ndim], cin, cout, kernel, stride=stride, padding=kernel // 2,
        padding_mode="replicate" if kernel > 1 else "zeros",
    )
    fan_in = cin * kernel**ndim
    bound = math.sqrt(6.0 / ((1 + 0.2**2) * fan_in))
    with torch.no_grad():
        conv.weight.uniform_(-bound, bound, generator=rng)
        conv.bias.zero_()
    return conv


def _norm(channels: int, kind: str) -> nn.Module:
    if kind == "instance":
        return nn.GroupNorm(channels, channels)
    if kind == "group":
        return nn.GroupNorm(max(1, channels // 4), channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm '{kind}'; use instance, group or none")


class _Block(nn.Sequential):
    def __init__(self, ndim, cin, cout, kernel, *, norm, rng, stride=1):
        super().__init__(conv_layer(ndim, cin, cout, kernel, stride=stride, rng=rng), _norm(cout, norm),
                         nn.LeakyReLU(0.2))


class Generator(nn.Module):
    r"""A deep-image-prior generator ``G_theta(z)`` with a fixed random input.

    Parameters
    ----------
    shape : tuple of int
        Output shape (2 or 3 axes); any sizes: the network works on the next multiple of
        ``2**depth`` and crops the centre.
    channels : int
        Output channels (no output activation: the parameterization applies heads).
    kind : {"decoder", "skip"}
        Decoder only, or encoder-decoder with skip connections.
    width : int
        Channels of the finest level; coarser levels have ``width * 2**k`` channels capped
        at ``max_width``.
    depth : int
        Number of up-sampling (and for ``"skip"``, down-sampling) levels.
    max_width : int
        Cap on the channels of coarse levels.
    skip_channels : int
        Channels of each skip connection (``"skip"`` only).
    upsample : {"linear", "nearest"}
        Up-sampling mode ((bi/tri)linear or nearest neighbour).
    norm : {"instance", "group", "none"}
        Normalisation after every convolution.
    input_std : float
        Standard deviation of the Gaussian input ``z``.
    seed : int
        Seed of the weights and of ``z``.

    Notes
    -----
    ``forward(noise_std=0.0, generator=None)`` adds ``noise_std * N(0, 1)`` (drawn from
    ``generator``) to ``z`` -- the input-noise regularisation of DIP.
    """

    def __init__(self, shape, channels, *, kind="decoder", width=16, depth=3, max_width=64, skip_channels=4,
                 upsample="linear", norm="instance", input_std=1.0, seed=0):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        self.ndim = len(self.shape)
        if self.ndim not in (1, 2, 3):
            raise ValueError(f"generator output must have 1-3 axes, got shape {self.shape}")
        if kind not in ("decoder", "skip"):
            raise ValueError(f"unknown generator kind '{kind}'; use decoder or skip")
        if upsample not in ("linear", "nearest"):
            raise ValueError(f"unknown upsample '{upsample}'; use linear or nearest")
        self.kind, self.depth = kind, int(depth)
        self.upsample_mode = _LINEAR_MODE[self.ndim] if upsample == "linear" else "nearest"
        step = 2**self.depth
        self.work_shape = tuple(step * math.ceil(s / step) for s in self.shape)
        widths = [min(int(max_width), int(width) * 2**k) for k in range(self.depth + 1)]  # fine -> coarse
        rng = torch.Generator().manual_seed(int(seed))
        nd = self.ndim
        if kind == "decoder":
            z_shape = (widths[-1],) + tuple(s // step for s in self.work_shape)
            self.ups = nn.ModuleList(
                _Block(nd, widths[k + 1], widths[k], 3, norm=norm, rng=rng) for k in reversed(range(self.depth))
            )
            self.out = conv_layer(nd, widths[0], channels, 1, rng=rng)
        else:
            z_shape = (widths[0],) + self.work_shape
            self.downs = nn.ModuleList(
                nn.Sequential(_Block(nd, widths[k], widths[k + 1], 3, stride=2, norm=norm, rng=rng),
                              _Block(nd, widths[k + 1], widths[k + 1], 3, norm=norm, rng=rng))
                for k in range(self.depth)
            )
            self.skips = nn.ModuleList(
                _Block(nd, widths[k], skip_channels, 1, norm=norm, rng=rng) for k in range(self.depth)
            )
            self.ups = nn.ModuleList(
                nn.Sequential(_Block(nd, widths[k + 1] + skip_channels, widths[k], 3, norm=norm, rng=rng),
                              _Block(nd, widths[k], widths[k], 1, norm=norm, rng=rng))
                for k in range(self.depth)
            )
            self.out = conv_layer(nd, widths[0], channels, 1, rng=rng)
        z = torch.randn((1,) + z_shape, generator=rng) * float(input_std)
        self.register_buffer("z", z)

    def _up(self, x):
        kwargs = {} if self.upsample_mode == "nearest" else {"align_corners": False}
        return F.interpolate(x, scale_factor=2, mode=self.upsample_mode, **kwargs)

    def forward(self, noise_std: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """The output, shape ``(channels,) + shape``."""
        x = self.z
        if noise_std:
            x = x + noise_std * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        if self.kind == "decoder":
            for block in self.ups:
                x = block(self._up(x))
        else:
            skips = []
            for down, skip in zip(self.downs, self.skips):
                skips.append(skip(x))
                x = down(x)
            for k in reversed(range(self.depth)):
                x = self.ups[k](torch.cat([skips[k], self._up(x)], dim=1))
        x = self.out(x)[0]
        crop = tuple(slice((w - s) // 2, (w - s) // 2 + s) for w, s in zip(self.work_shape, self.shape))
        return x[(slice(None),) + crop]
