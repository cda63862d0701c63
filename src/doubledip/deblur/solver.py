r"""Blind deconvolution with two untrained generators: :func:`deblur`.

We observe :math:`y = k * x + n` (``(H, W)`` gray or ``(H, W, 3)`` colour, one
kernel for all channels) and know neither the sharp image :math:`x` nor the
kernel :math:`k` nor its size -- only an upper bound :math:`K`.  Both are
generated, :math:`x = \mathrm{sigmoid}(G_\theta(z_x))` by a deep image prior
(encoder-decoder with skip connections, :class:`~doubledip.dip.generators.Generator`)
on the grid :math:`(H + K - 1) \times (W + K - 1)`, and :math:`k = \mathrm{softmax}(\ell_\phi)`
by :class:`~doubledip.deblur.kernel_generator.KernelGenerator` on :math:`K \times K`,
and fitted jointly,

.. math:: \min_{\theta,\phi}\; D\big(A_{k_\phi}\, x_\theta,\; y\big) + \tau\,\mathrm{TV}(x_\theta),

with :math:`A_k` the 'valid' convolution of :mod:`doubledip.deblur.model` (no
boundary condition, so no ringing) and :math:`D` a data term of
:mod:`doubledip.deblur.losses` chosen from the noise (least squares for Gaussian,
Poisson likelihood for Poisson, l1 for impulse noise) (Ren, Zhang, Wang, Hu &
Zuo, "Neural blind deconvolution using deep priors", CVPR 2020; Ulyanov,
Vedaldi & Lempitsky, "Deep image prior", CVPR 2018).

The kernel generator starts from a coarse-to-fine :math:`\ell_0`-gradient estimate of
the kernel (:func:`~doubledip.deblur.kernel_estimate.estimate_kernel`; option
``kernel_init``): by default three variants of it are computed and the one whose
deconvolution best predicts held-out pixels is kept
(:func:`~doubledip.deblur.kernel_selection.select_kernel`).  The returned image is by
default a total-variation deconvolution of the whole observation with that kernel and
no boundary condition (:func:`~doubledip.deblur.nonblind.tv_deconvolve`, weight from
the estimated noise).
With ``iterations=0`` (the default, see the note below) the initial estimate is the
kernel and no generator is fitted; given a ``kernel``, only the final deconvolution runs.

.. note:: Measured on the deblurring suite (``benchmarks/deblur_suite.py``: 3 images x 8
   kernels x 1% and 5% noise, 256x256, kernel bound twice the true size), the joint
   generator fit started from the :math:`\ell_0` estimate (200-300 iterations on the
   128-pixel crop) raised the kernel error and lowered the PSNR in all 8 cases tried, at
   5-10 times the run time; with 1000 iterations, measured later on 34 cases at 1% noise
   (20 images, two kernels), it gained 0.09 dB on average at 12 times the run time (see
   ``docs/results.md``).  So the default skips it; ``iterations > 0`` fits both generators.

The optimisation is :func:`doubledip.dip.fitting.fit` (Adam, schedule,
checkpoints, callbacks), on a module that packs image and kernel into one
vector.  Without ground truth, the returned estimate is the one of least
windowed variance of the outputs (Wang, Li, Zhuang & Sun, "Early stopping for
deep image prior", TMLR 2023), which also stops the run when the variance no
longer falls.  Restarts use seeds derived from ``seed`` and are ranked by the
data term of their selected estimate.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from scipy import ndimage
from torch import nn

from doubledip.config import options_dict
from doubledip.deblur.kernel_estimate import estimate_kernel
from doubledip.deblur.kernel_generator import KERNEL_GENERATORS, KernelGenerator
from doubledip.deblur.kernel_selection import select_kernel, select_weight
from doubledip.deblur.kernels import embed_kernel, odd_size
from doubledip.deblur.losses import DATA_TERMS, NOISE_DATA_TERM, data_term
from doubledip.deblur.model import NOISE_TYPES, blur, crop_centre, gcv_weight, noise_level, tikhonov_deconvolve
from doubledip.deblur.nonblind import tv_deconvolve, tv_weight
from doubledip.dip.fitting import FitOptions, fit
from doubledip.dip.generators import Generator
from doubledip.dip.parameterizations import child_seed
from doubledip.errors import ConfigError
from doubledip.methods import flush_denormals

__all__ = ["DeblurOptions", "DeblurResult", "deblur", "default_kernel_size", "known_kernel", "DeblurModel"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeblurOptions:
    r"""Options of :func:`deblur` (all settable from a TOML file).

    Attributes
    ----------
    kernel_size : int or None
        Upper bound on the kernel side in pixels (rounded up to odd); ``None``:
        :func:`default_kernel_size` (35 for images of 140 pixels and more).
    noise : {"gaussian", "poisson", "impulse"}
        The noise the data term is chosen for when ``data_term`` is ``auto``; with
        ``impulse`` the kernel estimate and the final deconvolution see the observation after a
        3x3 median filter (the generator fit keeps the raw data and the l1 term).
    data_term : {"auto", "l2", "huber", "l1", "ssim", "poisson"}
        ``auto``: l2 for Gaussian, poisson for Poisson, l1 for impulse noise.
    huber_delta : float
        Threshold of the Huber term (intensity units).
    tv_weight : float
        Weight of an (isotropic, smoothed) total-variation term on the image.
    iterations : int
        Maximum Adam steps per start of the joint generator fit; 0 (default): no
        generator fit, the initial kernel (``kernel_init``) is the estimate and ``final``
        is ``tv`` (see the module note; 1000 was the previous default).
    lr : float
        Learning rate of the image generator.
    kernel_lr_scale : float
        Learning rate of the kernel generator relative to ``lr``.
    schedule : {"constant", "cosine", "step"}
    generator : {"skip", "decoder"}
        Image generator: DIP encoder-decoder with skips, or decoder only.
    width, depth, max_width, skip_channels : int
        Image generator size (finest channels, levels, cap, skip channels).
    norm : {"instance", "group", "none"}
    kernel_generator : {"fcn", "free"}
        SelfDeblur's fully connected kernel network, or a free logit map.
    kernel_hidden : int
        Hidden units of the FCN.
    kernel_init_sigma : float
        Width of the initial Gaussian kernel relative to ``kernel_size``.
    input_noise : float
        DIP input-noise regularisation of the image generator.
    ema : float or None
        Exponential moving average of the outputs (decay); None: off.
    early_stopping : {"variance", "none"}
        Stop (and select) at the least windowed variance of the outputs, or run all
        iterations and return the last output.
    window : int
        Window of the variance criterion (iterations).
    patience : int
        Iterations without a lower variance before stopping.
    restarts : int
        Independent starts, ranked by the data term of their estimate.
    estimate_size : int or None
        The blind fit sees only the central crop of this side (at least three kernel
        sides; None: the whole image) -- the kernel is the same everywhere, and the cost
        of an iteration scales with the pixels.
    final : {"auto", "dip", "tv", "tikhonov"}
        The returned image: the generator's (``dip``; needs the whole image in the fit),
        or a non-blind deconvolution of the whole image with the estimated kernel: with a
        total-variation prior, :math:`\min_x \tfrac12\lVert A_k x - y\rVert^2 + \lambda\,\mathrm{TV}(x)`,
        :math:`\lambda` = ``tv_scale`` :math:`\hat\sigma^{3/2}` (``tv``,
        :func:`~doubledip.deblur.nonblind.tv_deconvolve`), or a quadratic one,
        :math:`\min_x \lVert A_k x - y\rVert^2 + \kappa \hat\sigma^2 \lVert\nabla x\rVert^2`
        (``tikhonov``, :func:`~doubledip.deblur.model.tikhonov_deconvolve`), with the noise
        std :math:`\hat\sigma` estimated from the data.  ``auto``: ``dip`` when the fit saw
        the whole image, else ``tv``.
    tv_scale : float
        :math:`s` of the ``tv`` weight :math:`\lambda = s\,\hat\sigma^{3/2}`
        (:func:`~doubledip.deblur.nonblind.tv_weight`; a tuned value).
    tv_iterations : int
        ADMM iterations of the ``tv`` deconvolution.
    known_weight_factors : tuple of float
        With a given ``kernel``, the ``tv`` weight is :math:`s\,\hat\sigma^{3/2}` times the
        one of these factors whose deconvolution best predicts held-out pixels
        (:func:`~doubledip.deblur.kernel_selection.select_weight`, with ``holdout_fraction``,
        ``holdout_folds`` and ``holdout_size``); ``(1,)`` keeps the rule.  Not used with an
        estimated kernel, where the held-out pixels prefer too small a weight.
    tikhonov_weight : {"gcv", "noise"}
        The weight of the Tikhonov term: :math:`\kappa \hat\sigma^2` (``noise``), or the
        larger of that and the weight chosen by generalised cross-validation (``gcv``,
        :func:`~doubledip.deblur.model.gcv_weight`; it adapts to the image's content --
        smooth images want far more smoothing -- but under-regularises when the kernel
        estimate is off, hence the floor and ``gcv_scale``).
    gcv_scale : float
        Factor on the cross-validated weight (``tikhonov_weight="gcv"``): with an
        estimated kernel, errors in the kernel act as extra noise that GCV does not see.
        3 was the best of 1, 2, 3, 4 on the deblurring suite (a tuned value).
    tikhonov_kappa : float
        :math:`\kappa` above (``tikhonov_weight="noise"``).
    kernel_init : {"select", "l0", "gaussian"}
        The kernel estimate (and the kernel generator's initial kernel): a coarse-to-fine
        estimate with an :math:`\ell_0` gradient prior
        (:func:`~doubledip.deblur.kernel_estimate.estimate_kernel`, on the whole
        observation; it also softly confines the kernel to its support, ``l0``), the one of
        several such estimates (``kernel_candidates``) that best predicts held-out pixels
        (``select``, :func:`~doubledip.deblur.kernel_selection.select_kernel`), or a broad
        Gaussian (``kernel_init_sigma``).
    kernel_candidates : tuple of str
        The ``select`` candidates, variants of the ``l0`` estimate: ``l0`` itself,
        ``sparse`` (twice ``init_threshold``: fewer, stronger kernel entries), ``small``
        (side ``kernel_size`` / :math:`\sqrt 2`, embedded in the full side) and ``coarse``
        (twice ``init_lam``: only the strongest edges).
    holdout_fraction, holdout_folds : float, int
        Pixels hidden per fold, and folds, of the ``select`` cross-validation.
    holdout_size : int or None
        The cross-validation sees only the central crop of this side (at least three
        kernel sides; None: the whole image), which bounds its cost on large images.
    init_lam, init_gamma, init_threshold : float
        ``lam``, ``gamma`` and ``threshold`` of
        :func:`~doubledip.deblur.kernel_estimate.estimate_kernel`.
    init_iterations : int
        Alternations per pyramid level of the ``l0`` estimates.
    init_nonneg_below : float
        ``nonneg_below`` of :func:`~doubledip.deblur.kernel_estimate.estimate_kernel`: below
        this noise (relative to the observation's 1-99 percentile range) the kernel steps are
        solved under :math:`k \ge 0`; 0: never (the clipped closed form only).  0.04 was
        chosen on the development images: it is on for their 1% noise cases (57 of 72) and
        off at 5%, where the constrained step made more collapses.
    checkpoint_every : int
        Checkpoint interval when a checkpoint folder is given.
    """

    kernel_size: int | None = None
    noise: str = "gaussian"
    data_term: str = "auto"
    huber_delta: float = 0.02
    tv_weight: float = 0.0
    iterations: int = 0
    lr: float = 0.01
    kernel_lr_scale: float = 0.01
    schedule: str = "cosine"
    generator: str = "skip"
    width: int = 16
    depth: int = 4
    max_width: int = 64
    skip_channels: int = 4
    norm: str = "instance"
    kernel_generator: str = "fcn"
    kernel_hidden: int = 512
    kernel_init_sigma: float = 0.15
    input_noise: float = 0.0
    ema: float | None = None
    early_stopping: str = "variance"
    window: int = 50
    patience: int = 300
    restarts: int = 1
    estimate_size: int | None = 128
    final: str = "auto"
    tv_scale: float = 0.6
    tv_iterations: int = 100
    known_weight_factors: tuple = (0.5, 1.0, 2.0, 4.0)
    tikhonov_weight: str = "gcv"
    tikhonov_kappa: float = 60.0
    gcv_scale: float = 3.0
    kernel_init: str = "select"
    kernel_candidates: tuple = ("l0", "sparse", "small")
    holdout_fraction: float = 0.1
    holdout_folds: int = 2
    holdout_size: int | None = 256
    init_lam: float = 4e-3
    init_gamma: float = 1.0
    init_threshold: float = 0.05
    init_iterations: int = 5
    init_nonneg_below: float = 0.04
    checkpoint_every: int = 0

    def __post_init__(self):
        choices = {"noise": NOISE_TYPES, "data_term": ("auto",) + tuple(DATA_TERMS),
                   "schedule": ("constant", "cosine", "step"), "generator": ("skip", "decoder"),
                   "norm": ("instance", "group", "none"), "kernel_generator": KERNEL_GENERATORS,
                   "early_stopping": ("variance", "none"), "final": ("auto", "dip", "tv", "tikhonov"),
                   "tikhonov_weight": ("gcv", "noise"), "kernel_init": ("select", "l0", "gaussian")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"option '{name}' must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if self.kernel_size is not None and self.kernel_size < 1:
            raise ValueError(f"kernel_size must be >= 1, got {self.kernel_size}")
        if self.iterations < 0 or self.restarts < 1 or self.init_iterations < 1:
            raise ValueError("iterations must be >= 0, restarts and init_iterations >= 1")
        if self.lr <= 0 or self.kernel_lr_scale <= 0:
            raise ValueError("lr and kernel_lr_scale must be > 0")
        if not self.init_nonneg_below >= 0:
            raise ValueError(f"init_nonneg_below must be >= 0 (0: never), got {self.init_nonneg_below!r}")
        if not self.tv_scale > 0 or self.tv_iterations < 1:
            raise ValueError("tv_scale must be > 0 and tv_iterations >= 1")
        unknown = [c for c in self.kernel_candidates if c not in KERNEL_VARIANTS]
        if unknown or not self.kernel_candidates:
            raise ValueError(f"kernel_candidates must be a non-empty list of {', '.join(KERNEL_VARIANTS)}, "
                             f"got {list(self.kernel_candidates)}")
        factors = self.known_weight_factors
        if not factors or not all(isinstance(f, (int, float)) and not isinstance(f, bool) and f > 0 for f in factors):
            raise ValueError(f"known_weight_factors must be a non-empty list of positive numbers, got {list(factors)}")
        if not 0 < self.holdout_fraction < 0.5 or self.holdout_folds < 1 or (self.holdout_size or 3) < 3:
            raise ValueError("holdout_fraction must be in (0, 0.5), holdout_folds >= 1 and holdout_size >= 3")

    @property
    def resolved_data_term(self) -> str:
        return NOISE_DATA_TERM[self.noise] if self.data_term == "auto" else self.data_term


@dataclass
class DeblurResult:
    """What :func:`deblur` returns.

    Attributes
    ----------
    image : ndarray, float32
        The sharp estimate on the observation's grid (``(H, W)`` or ``(H, W, 3)``).
    kernel : ndarray, float32, ``(K, K)``
        The kernel estimate (nonnegative, sums to one, centre at ``K // 2``).
    history : dict of str -> ndarray
        Per-iteration curves of the selected start (``loss``, ``data``, ``lr``, ``variance``)
        and ``start_data`` (the ranking value of every start).
    config : dict
        Every option used, the resolved kernel size and data term, the intensity scale, the
        estimated noise std, the ``final`` step and its weight (``final_weight``),
        ``kernel_given``, ``kernel_choice`` (the chosen ``select`` variant and every
        candidate's held-out error; None without a choice) and ``weight_choice`` (with a
        given kernel: the chosen ``known_weight_factors`` entry and every factor's held-out
        error; None without a choice).
    seed : int
        Seeds the generators and the held-out pixels of the kernel and weight choices.
    timings : dict of str -> float
        Seconds: ``total``, ``kernel_init``, ``start_<k>`` and ``final``.
    extended : ndarray, float32
        The image on the generator's whole ``(H + K - 1, W + K - 1)`` grid.
    """

    image: np.ndarray
    kernel: np.ndarray
    history: dict[str, np.ndarray] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    extended: np.ndarray | None = None


def known_kernel(kernel) -> np.ndarray:
    """A user's kernel checked and made a kernel of :func:`deblur`: square, odd side, nonnegative, sum one.

    An even side is grown by one pixel (:func:`~doubledip.deblur.kernels.embed_kernel`); a kernel
    with negative, NaN or no mass raises :class:`~doubledip.errors.ConfigError`.
    """
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1]:
        raise ConfigError(f"a kernel must be a square 2D array (pad it to a square), got shape {k.shape}")
    if not np.all(np.isfinite(k)) or k.min() < 0 or not k.sum() > 0:
        raise ConfigError("a kernel must be finite and nonnegative with a positive sum")
    k = embed_kernel(k, odd_size(k.shape[0])) if k.shape[0] % 2 == 0 else k
    return (k / k.sum()).astype(np.float32)


KERNEL_VARIANTS = ("l0", "sparse", "small", "coarse")


def _l0_variant(gray, size: int, name: str, options: DeblurOptions) -> np.ndarray:
    """The ``l0`` kernel estimate of ``gray`` with the settings of variant ``name`` (see ``kernel_candidates``)."""
    settings = dict(lam=options.init_lam, gamma=options.init_gamma, threshold=options.init_threshold,
                    iterations=options.init_iterations, nonneg_below=options.init_nonneg_below)
    side = size
    if name == "sparse":
        settings["threshold"] *= 2
    elif name == "coarse":
        settings["lam"] *= 2
    elif name == "small":
        side = max(3, odd_size(int(round(size / np.sqrt(2)))))
    k = estimate_kernel(gray, side, **settings)
    return embed_kernel(k, size) if side != size else k


def _holdout_crop(gray: np.ndarray, size: int, options: DeblurOptions) -> np.ndarray:
    """The central crop of ``gray`` the held-out choices see (``holdout_size``, at least three kernel sides)."""
    h, w = gray.shape
    side = max(int(options.holdout_size or max(h, w)), 3 * size)
    return crop_centre(gray, (min(h, side), min(w, side)))


def _holdout_settings(options: DeblurOptions, seed: int, device) -> dict:
    return dict(fraction=options.holdout_fraction, folds=options.holdout_folds, iterations=options.tv_iterations,
                seed=child_seed(seed, 3), device=device)


def _choose_kernel(gray: np.ndarray, size: int, candidates, options: DeblurOptions, seed: int,
                   device) -> tuple[int, list[float]]:
    """The blind default's held-out choice among ``candidates`` (crop, rule TV weight, folds, seed), as
    :func:`~doubledip.deblur.kernel_selection.select_kernel` returns it."""
    weight = tv_weight(noise_level(gray), scale=options.tv_scale)
    return select_kernel(_holdout_crop(gray, size, options), candidates, weight,
                         **_holdout_settings(options, seed, device))


def default_kernel_size(shape) -> int:
    """A generous kernel bound: 35 pixels, at most a quarter of the image's shorter side (odd, >= 3)."""
    return odd_size(max(3, min(35, min(shape[:2]) // 4)))


class DeblurModel(nn.Module):
    """Image and kernel generators behind the one-output protocol of :func:`~doubledip.dip.fitting.fit`.

    ``forward(noise_std, generator)`` returns the image (``(C, M1, M2)``, sigmoid) and the
    kernel (``(K, K)``) concatenated flat; :meth:`unpack` splits them again.
    """

    def __init__(self, image_generator: nn.Module, kernel_generator: nn.Module, image_shape, kernel_size: int):
        super().__init__()
        self.image = image_generator
        self.kernel = kernel_generator
        self.image_shape = tuple(image_shape)
        self.kernel_size = int(kernel_size)
        self.split = int(np.prod(self.image_shape))

    def forward(self, noise_std: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
        x = torch.sigmoid(self.image(noise_std=noise_std, generator=generator))
        return torch.cat([x.flatten(), self.kernel().flatten()])

    def unpack(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (v[:self.split].reshape(self.image_shape),
                v[self.split:].reshape(self.kernel_size, self.kernel_size))


def _tv(x: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    dy = x[..., 1:, :-1] - x[..., :-1, :-1]
    dx = x[..., :-1, 1:] - x[..., :-1, :-1]
    return torch.sqrt(dy * dy + dx * dx + eps * eps).mean()


def _build(options: DeblurOptions, channels: int, extended_shape, kernel_size: int, seed: int,
           device, kernel_init=None) -> DeblurModel:
    image = Generator(extended_shape, channels, kind=options.generator, width=options.width, depth=options.depth,
                      max_width=options.max_width, skip_channels=options.skip_channels, norm=options.norm,
                      seed=child_seed(seed, 1))
    kernel = KernelGenerator(kernel_size, kind=options.kernel_generator, hidden=options.kernel_hidden,
                             init_sigma=options.kernel_init_sigma, lr_scale=options.kernel_lr_scale,
                             seed=child_seed(seed, 2), init=kernel_init)
    return DeblurModel(image, kernel, (channels,) + tuple(extended_shape), kernel_size).to(device)


@flush_denormals()
def deblur(blurry, options: DeblurOptions | dict | None = None, *, seed: int = 0, device: str = "cpu",
           callback: Callable[[dict], Any] | None = None, checkpoint: str | Path | None = None,
           resume: bool = False, kernel=None) -> DeblurResult:
    r"""Blind deblurring of ``blurry`` with an image DIP and a kernel generator.

    Parameters
    ----------
    blurry : ndarray
        Observation, ``(H, W)`` or ``(H, W, 3)``, intensities about [0, 1] (larger ranges
        are scaled down and the estimate scaled back).
    options : DeblurOptions or dict, optional
        See :class:`DeblurOptions`; a dict is checked (unknown keys are an error).
    seed : int
        All random choices (weights, inputs, input noise) derive from it.
    device : str
        Torch device (``"cpu"``, ``"cuda"``).
    callback : callable, optional
        ``callback(info)`` after every iteration with ``iteration``, ``total`` (over all
        starts), ``loss``, ``start``; returning True stops the current start.
    checkpoint : path, optional
        Folder for the fitting loop's checkpoints (one file per start).
    resume : bool
        Continue from the checkpoints in ``checkpoint``.
    kernel : ndarray, optional
        A known kernel (odd sides, nonnegative; normalised to sum one): no kernel is
        estimated and no generator is fitted, the image is the non-blind ``final``
        deconvolution with it (``tv``, weight chosen by held-out pixels among
        ``known_weight_factors``, or ``tikhonov``).

    Returns
    -------
    DeblurResult

    Raises
    ------
    ConfigError
        Unknown or invalid options, or a kernel bound too large for the image.
    """
    from doubledip.config import make_options

    if options is None:
        options = DeblurOptions()
    elif isinstance(options, dict):
        options = make_options(DeblurOptions, options, source="deblur options")
    start_time = time.perf_counter()
    y = np.asarray(blurry, dtype=np.float32)
    if y.ndim not in (2, 3) or (y.ndim == 3 and y.shape[-1] not in (1, 3)):
        raise ConfigError(f"deblur takes an (H, W) or (H, W, 3) image, got shape {y.shape}")
    known = None
    if kernel is not None:  # non-blind: the kernel is given, nothing is fitted
        known = known_kernel(kernel)
        options = replace(options, kernel_size=known.shape[0], iterations=0,
                          final=options.final if options.final in ("tv", "tikhonov") else "tv")
    colour = y.ndim == 3
    chw = np.moveaxis(y, -1, 0) if colour else y[None]
    channels, h, w = chw.shape
    size = odd_size(options.kernel_size) if options.kernel_size else default_kernel_size((h, w))
    if size > min(h, w):
        raise ConfigError(f"kernel size {size} exceeds the image's shorter side {min(h, w)}; "
                          f"give --kernel-size below {min(h, w)}")
    scale = max(1.0, float(np.percentile(chw, 99.9)))
    fit_shape = (h, w)
    if options.estimate_size:
        side = max(int(options.estimate_size), 3 * size)
        fit_shape = (min(h, side), min(w, side))
    cropped = fit_shape != (h, w)
    final = options.final if options.final != "auto" else ("tv" if cropped or not options.iterations else "dip")
    if final == "dip" and not options.iterations:
        raise ConfigError("final 'dip' needs a generator fit; set iterations above 0, or use final 'tv'")
    if final == "dip" and cropped:
        raise ConfigError(f"final 'dip' needs the whole {h}x{w} image in the fit; set estimate_size to None "
                          f"(or at least {max(h, w)}), or use final 'tv'")
    target = torch.as_tensor(crop_centre(chw, fit_shape) / scale, dtype=torch.float32, device=device)
    extended_shape = (fit_shape[0] + size - 1, fit_shape[1] + size - 1)
    term_name = options.resolved_data_term
    term = data_term(term_name, delta=options.huber_delta) if term_name == "huber" else data_term(term_name)
    timings: dict[str, float] = {}
    fit_options = FitOptions(iterations=options.iterations, lr=options.lr, schedule=options.schedule,
                             input_noise=options.input_noise, ema=options.ema,
                             early_stopping=options.early_stopping,
                             select="variance" if options.early_stopping == "variance" else "last",
                             patience=options.patience, window=options.window,
                             checkpoint_every=options.checkpoint_every)
    folder = Path(checkpoint) if checkpoint is not None else None
    # the classical steps assume Gaussian-like noise: salt-and-pepper pixels are removed first
    clean = ndimage.median_filter(chw, size=(1, 3, 3), mode="nearest") if options.noise == "impulse" else chw
    gray = clean.mean(axis=0) / scale  # what the kernel estimates and the held-out choices see
    kernel0, choice = known, None
    if known is None and options.kernel_init != "gaussian":
        t0 = time.perf_counter()
        names = options.kernel_candidates if options.kernel_init == "select" else ("l0",)
        candidates = [_l0_variant(gray, size, name, options) for name in names]
        kernel0 = candidates[0]
        if len(candidates) > 1:
            chosen, errors = _choose_kernel(gray, size, candidates, options, seed, device)
            kernel0, choice = candidates[chosen], {"chosen": names[chosen], "holdout_errors": dict(zip(names, errors))}
        timings["kernel_init"] = time.perf_counter() - t0

    best = None
    starts, histories = [], []
    for k in range(options.restarts if options.iterations else 0):
        t0 = time.perf_counter()
        run_seed = child_seed(seed, 100 + k)
        model = _build(options, channels, extended_shape, size, run_seed, device, kernel0)

        def objective(v, model=model):
            x, kern = model.unpack(v)
            misfit = term(blur(x, kern), target)
            loss = misfit + options.tv_weight * _tv(x) if options.tv_weight else misfit
            return loss, {"data": misfit.detach()}

        def relay(info, k=k):
            if callback is None:
                return None
            done = k * options.iterations
            return callback({**info, "iteration": done + info["iteration"],
                             "total": options.restarts * options.iterations, "start": k})

        path = folder / f"deblur-start{k}.pt" if folder is not None else None
        result = fit(model, objective, options=fit_options, seed=child_seed(run_seed, 3), checkpoint=path,
                     resume=resume, callback=relay)
        with torch.no_grad():
            x, kern = model.unpack(result.output)
            score = float(term(blur(x, kern), target))
        timings[f"start_{k}"] = time.perf_counter() - t0
        starts.append(score)
        histories.append(result.history)
        logger.info("start %d (seed %d): data %.4g, best iteration %d of %d", k, run_seed, score,
                    result.best_iteration, result.iterations)
        if best is None or score < best[0]:
            best = (score, k, x.detach().cpu().numpy(), kern.detach().cpu().numpy(), result)

    if best is None:  # no generator fit: the initial kernel is the estimate
        kern = (kernel0 if kernel0 is not None else
                KernelGenerator(size, kind="free", init_sigma=options.kernel_init_sigma)().detach().numpy())
        best = (float("nan"), -1, None, np.asarray(kern, dtype=np.float32), None)
    score, k_best, x, kern, result = best
    sigma = noise_level(np.moveaxis(clean, 0, -1) / scale)
    weight, weight_choice = None, None
    if final in ("tv", "tikhonov"):
        t0 = time.perf_counter()
        y_full = torch.as_tensor(clean / scale, dtype=torch.float64, device=device)
        k_t = torch.as_tensor(kern, dtype=torch.float64, device=device)
        if final == "tv":
            weight = tv_weight(sigma, scale=options.tv_scale)
            factors = [float(f) for f in options.known_weight_factors]
            if known is not None and len(factors) > 1:
                chosen, errors = select_weight(_holdout_crop(gray, size, options), kern, [weight * f for f in factors],
                                               **_holdout_settings(options, seed, device))
                weight *= factors[chosen]
                weight_choice = {"factor": factors[chosen], "holdout_errors": dict(zip(map(str, factors), errors))}
            x = tv_deconvolve(y_full, k_t, weight, iterations=options.tv_iterations).cpu().numpy()
        else:
            weight = options.tikhonov_kappa * sigma**2
            if options.tikhonov_weight == "gcv":
                weight = max(weight, options.gcv_scale * gcv_weight(clean / scale, kern))
            x = tikhonov_deconvolve(y_full, k_t, weight).cpu().numpy()
        timings["final"] = time.perf_counter() - t0
    extended = (x * scale).astype(np.float32)
    image = crop_centre(extended, (h, w))
    if colour:
        image, extended = np.moveaxis(image, 0, -1), np.moveaxis(extended, 0, -1)
    else:
        image, extended = image[0], extended[0]
    history = dict(histories[k_best]) if histories else {}
    history["start_data"] = np.asarray(starts)
    config = {"method": "deblur", **options_dict(options), "kernel_size": size, "data_term": term_name,
              "intensity_scale": scale, "fit_shape": list(fit_shape), "final": final,
              "noise_std": sigma * scale, "final_weight": weight, "best_start": k_best,
              "best_iteration": result.best_iteration if result is not None else -1,
              "iterations_run": result.iterations if result is not None else 0,
              "stopped_early": result.stopped_early if result is not None else False, "device": str(device),
              "kernel_given": known is not None, "kernel_choice": choice, "weight_choice": weight_choice}
    timings["total"] = time.perf_counter() - start_time
    return DeblurResult(np.ascontiguousarray(image, dtype=np.float32), kern.astype(np.float32), history, config,
                        int(seed), timings, np.ascontiguousarray(extended, dtype=np.float32))
