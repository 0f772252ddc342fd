from collections import namedtuple

import pytest
import torch
from torch import nn

from cvkit.train import History, fit, to_device


def _line_data(n_batches=8):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n_batches, 16, 1, generator=g)
    return [(xb, 3 * xb - 1) for xb in x]


def test_fit_learns_a_line_and_logs_one_value_per_epoch():
    model = nn.Linear(1, 1)
    history = fit(model, _line_data(), lambda m, b: nn.functional.mse_loss(m(b[0]), b[1]), epochs=40,
                  optimizer=torch.optim.SGD(model.parameters(), lr=0.1), progress=False)
    assert len(history["loss"]) == 40 and len(history.epoch_seconds) == 40
    assert history["loss"][-1] < 1e-4 < history["loss"][0]
    assert model.weight.item() == pytest.approx(3, abs=1e-2) and model.bias.item() == pytest.approx(-1, abs=1e-2)


def test_dict_losses_are_summed_and_each_is_logged():
    model = nn.Linear(1, 1)
    seen_modes = []

    def loss_fn(m, batch):
        x, y = batch
        return {"mse": nn.functional.mse_loss(m(x), y), "weight_decay": 0.5 * m.weight.pow(2).sum()}

    def evaluate(m):
        seen_modes.append(m.training)
        return {"val": 1.0}

    history = fit(model, _line_data(2), loss_fn, epochs=3, optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
                  evaluate=evaluate, progress=False)
    for epoch in range(3):
        assert history["loss"][epoch] == pytest.approx(history["mse"][epoch] + history["weight_decay"][epoch])
    assert history["val"] == [1.0, 1.0, 1.0] and seen_modes == [False, False, False]
    assert set(history.last()) == {"loss", "mse", "weight_decay", "val"}


def test_a_non_finite_loss_stops_training_with_advice():
    model = nn.Linear(1, 1)
    with pytest.raises(FloatingPointError, match="learning rate"):
        fit(model, _line_data(1), lambda m, b: m(b[0]).sum() * float("nan"), epochs=1,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1), progress=False)


@pytest.mark.parametrize("bad, error", [(lambda m, b: m(b[0]), ValueError), (lambda m, b: 1.0, TypeError),
                                        (lambda m, b: {}, TypeError)])
def test_loss_fn_must_return_a_scalar_or_a_dict(bad, error):
    model = nn.Linear(1, 1)
    with pytest.raises(error, match="loss_fn"):
        fit(model, _line_data(1), bad, epochs=1, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), progress=False)


def test_empty_batches_and_negative_epochs_are_refused():
    model = nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="no batch"):
        fit(model, [], lambda m, b: m(b).sum(), epochs=1, optimizer=optimizer, progress=False)
    with pytest.raises(ValueError, match="epochs"):
        fit(model, [], lambda m, b: m(b).sum(), epochs=-1, optimizer=optimizer, progress=False)


def test_scheduler_steps_once_per_epoch_or_once_per_batch():
    def mse(m, batch):
        return nn.functional.mse_loss(m(batch[0]), batch[1])

    model = nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    fit(model, _line_data(4), mse, epochs=3, optimizer=optimizer,
        scheduler=torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5), progress=False)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 ** 3)      # halved after each epoch

    # per batch: the rates the optimizer sees are OneCycleLR's own, stepped by hand 3 epochs x 4 batches
    model = nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    seen = []

    def recording_mse(m, batch):
        seen.append(optimizer.param_groups[0]["lr"])
        return mse(m, batch)

    fit(model, _line_data(4), recording_mse, epochs=3, optimizer=optimizer, progress=False, scheduler_step="batch",
        scheduler=torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.5, total_steps=12))
    reference_optimizer = torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1)
    reference = torch.optim.lr_scheduler.OneCycleLR(reference_optimizer, max_lr=0.5, total_steps=12)
    expected = []
    for _ in range(12):
        expected.append(reference_optimizer.param_groups[0]["lr"])
        reference_optimizer.step()
        reference.step()
    assert seen == pytest.approx(expected) and len(set(seen)) > 6
    with pytest.raises(ValueError, match="scheduler_step"):
        fit(model, _line_data(1), mse, epochs=1, optimizer=optimizer, scheduler_step="step", progress=False)


def test_to_device_walks_nested_structures():
    Pair = namedtuple("Pair", "image target")
    batch = {"a": [torch.zeros(1), (torch.ones(2), "label")], "b": Pair(torch.zeros(3), 7)}
    moved = to_device(batch, "meta")
    assert moved["a"][0].device.type == "meta" and moved["a"][1][0].device.type == "meta"
    assert moved["a"][1][1] == "label" and isinstance(moved["a"][1], tuple)
    assert isinstance(moved["b"], Pair) and moved["b"].image.device.type == "meta" and moved["b"].target == 7


def test_history_reports_unknown_metrics_by_name_and_plots():
    import matplotlib
    matplotlib.use("Agg")
    history = History()
    history.log({"loss": 2.0})
    history.log({"loss": 1.0})
    with pytest.raises(KeyError, match="loss"):
        history["accuracy"]
    ax = history.plot()
    assert len(ax.lines) == 1 and list(ax.lines[0].get_ydata()) == [2.0, 1.0]
