"""Blind image deblurring with two untrained generators (image DIP + kernel generator).

:func:`deblur` is the solver; :mod:`~doubledip.deblur.model` the blur forward model
without wrap-around; :mod:`~doubledip.deblur.kernels` seeded test kernels;
:mod:`~doubledip.deblur.baseline` non-blind Wiener and Richardson-Lucy;
:mod:`~doubledip.deblur.evaluation` aligned PSNR/SSIM and kernel error;
:mod:`~doubledip.deblur.images` image files; :mod:`~doubledip.deblur.kernel_estimate` the
coarse-to-fine l0 kernel estimate; :mod:`~doubledip.deblur.kernel_selection` the choice
among kernel estimates by held-out pixels; :mod:`~doubledip.deblur.nonblind` the
total-variation deconvolution with a known kernel.
"""

from doubledip.deblur.kernel_estimate import estimate_kernel
from doubledip.deblur.kernels import gaussian_kernel, make_kernel, motion_kernel
from doubledip.deblur.model import BlurOperator, blur, blur_adjoint, degrade
from doubledip.deblur.solver import DeblurOptions, DeblurResult, deblur, default_kernel_size

__all__ = ["deblur", "DeblurOptions", "DeblurResult", "default_kernel_size", "blur", "blur_adjoint",
           "BlurOperator", "degrade", "make_kernel", "motion_kernel", "gaussian_kernel", "estimate_kernel"]
