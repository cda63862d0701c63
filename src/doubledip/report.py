"""Figures: complex images with a phase colour wheel, 3D slices, loss curves, comparisons.

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot, no global
backend state) and saved atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import hsv_to_rgb
from matplotlib.figure import Figure

__all__ = [
    "complex_to_rgb",
    "add_phase_wheel",
    "result_figure",
    "comparison_figure",
    "gallery_figure",
    "save_figure",
]


PHASE_CMAP = colormaps["twilight"].with_extremes(bad="black")


def complex_to_rgb(obj: np.ndarray, *, vmax: float | None = None) -> np.ndarray:
    r"""Map a complex image to RGB: hue = phase, brightness = magnitude.

    .. math:: H = \frac{\arg x + \pi}{2\pi},\quad S = 1,\quad V = \min(|x| / v_{max}, 1)

    the usual domain colouring of complex fields (Wegert, *Visual Complex
    Functions*, Birkhauser 2012).  ``vmax`` defaults to the 99.9th percentile
    of ``|x|`` so one hot pixel does not darken the image.
    """
    obj = np.asarray(obj)
    mag = np.abs(obj)
    if vmax is None:
        vmax = float(np.percentile(mag, 99.9)) if mag.size else 1.0
    vmax = vmax if vmax > 0 else 1.0
    hsv = np.stack(
        [(np.angle(obj) + np.pi) / (2 * np.pi), np.ones_like(mag), np.clip(mag / vmax, 0, 1)], axis=-1
    )
    return hsv_to_rgb(hsv)


def add_phase_wheel(fig: Figure, rect=(0.0, 0.0, 0.08, 0.08)) -> None:
    """Draw a phase colour wheel (phase -> hue, radius -> brightness) in ``rect`` of ``fig``."""
    ax = fig.add_axes(rect)
    g = np.linspace(-1, 1, 101)
    z = g[None, :] + 1j * g[:, None]
    wheel = complex_to_rgb(np.where(np.abs(z) <= 1, z, 0), vmax=1.0)
    ax.imshow(wheel, origin="lower")
    ax.set_axis_off()
    ax.set_title("phase", fontsize=7)


def _central_slices(volume: np.ndarray) -> list[tuple[str, np.ndarray]]:
    z, y, x = (s // 2 for s in volume.shape)
    return [("z slice", volume[z]), ("y slice", volume[:, y]), ("x slice", volume[:, :, x])]


def _support_box(support: np.ndarray, margin: int) -> tuple[slice, ...]:
    """Bounding box of ``support`` grown by ``margin`` pixels (the whole array if empty)."""
    if not support.any():
        return tuple(slice(0, n) for n in support.shape)
    idx = np.nonzero(support)
    return tuple(slice(max(int(i.min()) - margin, 0), min(int(i.max()) + margin + 1, n)) for i, n in zip(idx, support.shape))


def _crop_to_support(obj: np.ndarray, support: np.ndarray | None, margin: int = 4):
    if support is None:
        return obj, support
    sl = _support_box(support, margin)
    return obj[sl], support[sl]


def _show(ax, image, title, **kw):
    im = ax.imshow(image, origin="upper", **kw)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def result_figure(obj, *, support=None, history=None, title: str = "", crop: bool = True) -> Figure:
    """Figure of one reconstruction.

    2D: magnitude, phase (where the magnitude exceeds 10 % of its maximum) and the
    complex view; 3D: the complex view of the three central slices and the
    magnitude projection.  Below, the loss curves of ``history`` on a log scale.
    """
    obj = np.asarray(obj)
    if crop:
        obj, support = _crop_to_support(obj, None if support is None else np.asarray(support, bool))
    curves = {k: np.asarray(v) for k, v in (history or {}).items() if np.asarray(v).size}
    nrows = 2 if curves else 1
    fig = Figure(figsize=(12, 4 * nrows), layout="constrained")
    grid = fig.add_gridspec(nrows, 4)
    mag = np.abs(obj)
    if obj.ndim == 2:
        _show(fig.add_subplot(grid[0, 0]), mag, "magnitude", cmap="gray")
        phase = np.where(mag > 0.1 * mag.max(), np.angle(obj), np.nan)
        im = _show(fig.add_subplot(grid[0, 1]), phase, "phase (rad)", cmap=PHASE_CMAP, vmin=-np.pi, vmax=np.pi)
        fig.colorbar(im, ax=fig.axes[-1], shrink=0.8)
        _show(fig.add_subplot(grid[0, 2:]), complex_to_rgb(obj), "complex (hue = phase)")
    else:
        for col, (name, sl) in enumerate(_central_slices(obj)):
            _show(fig.add_subplot(grid[0, col]), complex_to_rgb(sl, vmax=float(mag.max())), name)
        _show(fig.add_subplot(grid[0, 3]), mag.sum(axis=0), "magnitude projection", cmap="gray")
    if curves:
        ax = fig.add_subplot(grid[1, :])
        for name, curve in curves.items():
            curve = np.atleast_2d(curve)
            for k, row in enumerate(curve):
                ax.semilogy(row, label=name if k == 0 else None, alpha=1.0 if len(curve) == 1 else 0.6)
        ax.set_xlabel("iteration")
        ax.set_ylabel("loss")
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    add_phase_wheel(fig, (0.005, 0.9, 0.07, 0.09))
    return fig


def comparison_figure(
    intensity,
    mask,
    truth,
    reconstructions: dict[str, tuple[np.ndarray, str]],
) -> Figure:
    """Pattern (log scale, masked pixels marked), truth and each reconstruction.

    ``reconstructions`` maps a method name to ``(object, caption)``; every
    object is shown as magnitude, phase and complex image, cropped to the
    truth's extent so the panels line up.
    """
    truth = np.asarray(truth)
    rows = 1 + len(reconstructions)
    fig = Figure(figsize=(13, 3.3 * rows), layout="constrained")
    grid = fig.add_gridspec(rows, 4)
    shown = np.log10(np.maximum(np.asarray(intensity, float), 0) + 1)
    ax = fig.add_subplot(grid[0, 0])
    _show(ax, shown, "pattern, log10(I+1)", cmap="magma")
    m = np.asarray(mask) != 0
    if m.any():
        overlay = np.zeros(m.shape + (4,))
        overlay[m] = (0.2, 0.6, 1.0, 0.8)
        ax.imshow(overlay, origin="upper")
        ax.set_title("pattern, log10(I+1); mask in blue", fontsize=9)
    sl = _support_box(np.abs(truth) > 0.05 * np.abs(truth).max(), margin=6)

    def panels(row, obj, label):
        view = np.asarray(obj)[sl]
        mag = np.abs(view)
        offset = 1 if row == 0 else 0
        _show(fig.add_subplot(grid[row, offset]), mag, f"{label}: magnitude", cmap="gray")
        phase = np.where(mag > 0.1 * max(mag.max(), 1e-30), np.angle(view), np.nan)
        _show(
            fig.add_subplot(grid[row, offset + 1]), phase, f"{label}: phase", cmap=PHASE_CMAP, vmin=-np.pi, vmax=np.pi
        )
        _show(fig.add_subplot(grid[row, offset + 2]), complex_to_rgb(view), f"{label}: complex")

    panels(0, truth, "truth")
    for row, (name, (obj, caption)) in enumerate(reconstructions.items(), start=1):
        panels(row, obj, f"{name} ({caption})" if caption else name)
    add_phase_wheel(fig, (0.005, 0.005, 0.06, 0.06))
    return fig


def gallery_figure(panels: list[tuple[str, np.ndarray, np.ndarray]], *, title: str = "") -> Figure:
    """One row per ``(caption, truth, aligned reconstruction)``: truth and reconstruction
    as complex images, reconstruction magnitude and phase (3D: central slices)."""
    fig = Figure(figsize=(13, 3.3 * len(panels)), layout="constrained")
    grid = fig.add_gridspec(len(panels), 4)
    for row, (caption, truth, recon) in enumerate(panels):
        truth, recon = np.asarray(truth), np.asarray(recon)
        if truth.ndim == 3:
            truth, recon = truth[truth.shape[0] // 2], recon[recon.shape[0] // 2]
        sl = _support_box(np.abs(truth) > 0.05 * np.abs(truth).max(), margin=6)
        truth, recon = truth[sl], recon[sl]
        mag = np.abs(recon)
        _show(fig.add_subplot(grid[row, 0]), complex_to_rgb(truth), f"truth ({caption})")
        _show(fig.add_subplot(grid[row, 1]), complex_to_rgb(recon, vmax=float(np.abs(truth).max())), "reconstruction")
        _show(fig.add_subplot(grid[row, 2]), mag, "magnitude", cmap="gray")
        phase = np.where(mag > 0.1 * max(mag.max(), 1e-30), np.angle(recon), np.nan)
        _show(fig.add_subplot(grid[row, 3]), phase, "phase", cmap=PHASE_CMAP, vmin=-np.pi, vmax=np.pi)
    if title:
        fig.suptitle(title)
    add_phase_wheel(fig, (0.005, 0.005, 0.06, 0.06))
    return fig


def save_figure(fig: Figure, path) -> Path:
    """Save ``fig`` to ``path`` atomically (format from the suffix)."""
    from doubledip.io import atomic_output

    path = Path(path)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=110, format=path.suffix.lstrip(".") or "png")
    return path
