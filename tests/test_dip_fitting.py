"""The reusable DIP fitting loop: loss falls, free loss, early stopping, exact resume."""

import numpy as np
import pytest
import torch

from doubledip.dip import FitOptions, Generator, fit, learning_rate, select_best
from doubledip.errors import DataError


def _problem(seed=0):
    target = torch.as_tensor(np.random.default_rng(seed).standard_normal((1, 16, 16)), dtype=torch.float32)
    train = torch.ones(1, 16, 16)
    train[:, ::5, ::5] = 0
    free = 1 - train

    def objective(out):
        loss = ((out - target).square() * train).sum() / train.sum()
        return loss, {"data": loss.detach()}

    def monitor(out):
        return {"free": float(((out - target).square() * free).sum() / free.sum())}

    return objective, monitor


def _model(seed=0):
    return Generator((16, 16), 1, width=4, depth=2, seed=seed)


def test_loss_falls_in_30_iterations():
    objective, monitor = _problem()
    result = fit(_model(), objective, monitor=monitor, options=FitOptions(iterations=30, lr=1e-2))
    loss = result.history["loss"]
    assert len(loss) == 30 and loss[-5:].mean() < 0.8 * loss[:5].mean()
    assert result.best == pytest.approx(result.history["free"].min())
    assert set(result.history) >= {"loss", "data", "free", "lr"}


def test_callback_sees_every_iteration_and_can_stop():
    objective, _ = _problem()
    seen = []
    result = fit(_model(), objective, options=FitOptions(iterations=20),
                 callback=lambda info: seen.append(info["iteration"]) or info["iteration"] == 7)
    assert seen == list(range(1, 8)) and result.iterations == 7 and result.stopped_early


def test_free_early_stopping_stops():
    objective, monitor = _problem()
    result = fit(_model(), objective, monitor=monitor,
                 options=FitOptions(iterations=30, lr=1e-2, early_stopping="free", patience=3, min_delta=0.5))
    assert result.stopped_early and result.iterations < 30


@pytest.mark.parametrize("extra", [dict(), dict(input_noise=0.05, ema=0.9, early_stopping="variance", window=5,
                                                patience=100, schedule="cosine", warmup=3, grad_clip=1.0)])
def test_resume_equals_uninterrupted(tmp_path, extra):
    objective, monitor = _problem()
    options = FitOptions(iterations=25, lr=1e-2, checkpoint_every=10, **extra)
    reference = fit(_model(), objective, monitor=monitor, options=options, seed=4)

    class Killed(Exception):
        pass

    def kill(info):
        if info["iteration"] == 17:
            raise Killed

    path = tmp_path / "fit.pt"
    with pytest.raises(Killed):
        fit(_model(), objective, monitor=monitor, options=options, seed=4, checkpoint=path, callback=kill)
    model = _model()
    resumed = fit(model, objective, monitor=monitor, options=options, seed=4, checkpoint=path, resume=True)
    assert torch.equal(resumed.output, reference.output)
    assert resumed.best_iteration == reference.best_iteration
    for key in reference.history:
        np.testing.assert_array_equal(resumed.history[key], reference.history[key])
    # a finished checkpoint returns at once with the same result and final weights
    again = fit(_model(), objective, monitor=monitor, options=options, seed=4, checkpoint=path, resume=True)
    assert torch.equal(again.output, reference.output)


def test_resume_with_other_options_is_refused(tmp_path):
    objective, _ = _problem()
    path = tmp_path / "fit.pt"
    fit(_model(), objective, options=FitOptions(iterations=3), checkpoint=path)
    with pytest.raises(DataError, match="different fitting options"):
        fit(_model(), objective, options=FitOptions(iterations=4), checkpoint=path, resume=True)


def test_schedules():
    opts = FitOptions(iterations=100, lr=1.0, schedule="cosine", min_lr_factor=0.1, warmup=10)
    assert learning_rate(0, opts) == pytest.approx(0.1)
    assert learning_rate(9, opts) == pytest.approx(1.0)
    assert learning_rate(99, opts) == pytest.approx(0.1, abs=1e-3)
    step = FitOptions(iterations=100, lr=1.0, schedule="step")
    assert [learning_rate(i, step) for i in (0, 50, 75)] == [1.0, 0.5, 0.25]


def test_select_best_ignores_nan():
    class R:
        def __init__(self, best):
            self.best = best

    assert select_best([R(float("nan")), R(2.0), R(1.0)]) == 2
