"""The direct Adam step (``_direct_adam``): from the first step, a fit
with ``fast_path=True`` calls torch's fused Adam kernel itself, for the
model and optimizer state ``optimizer.step()`` gives, bit for bit, and
leaves every step to ``optimizer.step()`` where it cannot promise that."""

import logging

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim.optimizer import (
    register_optimizer_step_post_hook,
    register_optimizer_step_pre_hook,
)

from skcallback import NeuralRegressor, _direct_adam, _internals
from skcallback.callbacks import LambdaCallback, LRScheduler


def _data(seed=0, n_rows=203):
    """203 rows: batches of 32 leave a last batch of 11."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n_rows, 5)).astype(np.float32)
    return X, X @ rng.normal(size=5) + 0.1 * rng.normal(size=n_rows)


@pytest.fixture
def fresh(monkeypatch):
    """The direct step as in a new process: not yet checked against
    ``optimizer.step()``, its switch not yet read."""
    monkeypatch.setattr(_direct_adam, "_VERDICTS", {})
    monkeypatch.setattr(_direct_adam, "_SWITCHED_ON", [])
    monkeypatch.delenv(_direct_adam.SWITCH, raising=False)


def _assert_same_model_and_state(direct, plain):
    for a, b in zip(direct.module_.parameters(), plain.module_.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    mine, theirs = direct.optimizer_.state_dict(), plain.optimizer_.state_dict()
    assert mine["param_groups"] == theirs["param_groups"]
    for i, state in theirs["state"].items():
        for key, value in state.items():
            torch.testing.assert_close(mine["state"][i][key], value, rtol=0, atol=0)


class _TwoLayers(nn.Module):
    """A user's module: the hand-derived step does not apply, the direct
    optimizer step does."""

    def __init__(self, n_features_in, n_outputs):
        super().__init__()
        self.hidden = nn.Linear(n_features_in, 9)
        self.out = nn.Linear(9, n_outputs)

    def forward(self, X):
        return self.out(torch.tanh(self.hidden(X)))


def _profiled_fit(est, X, y):
    """Fit ``est``; return how many times torch's ``Optimizer.step`` ran."""
    with torch.autograd.profiler.profile() as prof:
        est.fit(X, y)
    return sum(1 for event in prof.function_events if event.name.startswith("Optimizer.step#"))


OPTIMIZERS = {
    "adam": {},
    "adam, weight decay": {"optimizer__weight_decay": 0.1},
    "adamw": {"optimizer": torch.optim.AdamW, "optimizer__weight_decay": 0.1},
    "adam, step-wise scheduler": {
        "callbacks": [LRScheduler("StepLR", step_every="batch", step_size=3, gamma=0.5)]
    },
}


@pytest.mark.parametrize("module", [None, _TwoLayers], ids=["built-in MLP", "custom module"])
@pytest.mark.parametrize("case", list(OPTIMIZERS))
def test_fused_adam_steps_directly_with_the_model_and_state_of_optimizer_step(case, module):
    """fast_path=True calls the fused Adam kernel itself from the first
    step, which creates the state: the parameters and the optimizer's state are bit for bit those of
    torch's optimizer.step(), which fast_path=False runs at every step."""
    X, y = _data()
    params = dict(
        module=module,
        hidden_layer_sizes=(8,),
        batch_size=32,
        max_epochs=3,
        validation_fraction=None,
        random_state=0,
        **OPTIMIZERS[case],
    )
    direct, plain = NeuralRegressor(**params), NeuralRegressor(fast_path=False, **params)
    assert _profiled_fit(direct, X, y) == 0  # the first step creates the state too
    assert _profiled_fit(plain, X, y) == plain.n_steps_ == direct.n_steps_ == 21
    if module is not None:  # the same gradients: the same model, exactly
        _assert_same_model_and_state(direct, plain)


def test_step_hooks_and_other_optimizers_get_optimizer_step(regression_data):
    X, y = regression_data
    calls = []

    def register(ctx):
        if ctx.epoch == 1:
            ctx.optimizer.register_step_post_hook(lambda *args: calls.append(1))

    hooked = NeuralRegressor(
        max_epochs=1, callbacks=[LambdaCallback(name="hook", on_train_begin=register)]
    )
    _profiled_fit(hooked, X, y)
    assert len(calls) == hooked.n_steps_
    for params in ({"optimizer": "sgd"}, {"optimizer__amsgrad": True}, {"optimizer__fused": False}):
        est = NeuralRegressor(max_epochs=1, **params)
        assert _profiled_fit(est, X, y) == est.n_steps_


def _direct_and_plain(**params):
    """A fit that may step directly and one that never does, of a custom
    module (whose gradients are autograd's in both: the same model,
    exactly); returns both, and how many times each ran ``Optimizer.step``."""
    X, y = _data()
    params = dict(
        module=_TwoLayers,
        batch_size=32,
        max_epochs=2,
        validation_fraction=None,
        random_state=0,
        **params,
    )
    direct, plain = NeuralRegressor(**params), NeuralRegressor(fast_path=False, **params)
    counts = _profiled_fit(direct, X, y), _profiled_fit(plain, X, y)
    _assert_same_model_and_state(direct, plain)
    return direct, plain, counts


def _change_groups(change):
    def at_begin(ctx):
        for group in ctx.optimizer.param_groups:
            change(group)

    return LambdaCallback(name="change", on_fit_begin=at_begin)


GROUP_CHANGES = {
    "an option a newer torch may add": lambda group: group.update(future_option=1),
    "a tensor learning rate": lambda group: group.update(lr=torch.as_tensor(group["lr"])),
    "betas as tensors": lambda group: group.update(
        betas=tuple(map(torch.as_tensor, group["betas"]))
    ),
    "amsgrad": lambda group: group.update(amsgrad=True),
    "maximize": lambda group: group.update(maximize=True),
    "decoupled weight decay on Adam": lambda group: group.update(
        decoupled_weight_decay=True, weight_decay=0.1
    ),
}


@pytest.mark.parametrize("change", list(GROUP_CHANGES))
def test_a_group_option_or_value_it_does_not_know_takes_optimizer_step(fresh, change):
    _, plain, (direct_steps, plain_steps) = _direct_and_plain(
        callbacks=[_change_groups(GROUP_CHANGES[change])]
    )
    assert direct_steps == plain_steps == plain.n_steps_


def test_scheduler_bookkeeping_in_the_groups_keeps_the_direct_step(fresh):
    scheduler = LRScheduler("OneCycleLR", step_every="batch", max_lr=0.01, total_steps=20)
    assert _direct_and_plain(callbacks=[scheduler])[2][0] == 0


def test_a_direct_step_that_differs_leaves_the_process_to_optimizer_step(
    fresh, monkeypatch, caplog
):
    """The self-check, once per process, finds a kernel that no longer
    computes what optimizer.step() computes: every step, in this fit and
    the next, goes to optimizer.step(), and the logger says so."""
    kernel = _internals.adam_kernel

    def changed(decoupled_weight_decay):
        real = kernel(decoupled_weight_decay)
        return lambda *args, lr, **kwargs: real(*args, lr=lr * 1.5, **kwargs)

    monkeypatch.setattr(_internals, "adam_kernel", changed)
    with caplog.at_level(logging.INFO, logger="skcallback"):
        for _ in range(2):
            _, plain, (direct_steps, _) = _direct_and_plain()
            assert direct_steps == plain.n_steps_
    assert caplog.text.count("differs from optimizer.step()") == 1


def test_a_first_state_unlike_optimizer_steps_leaves_the_process_to_optimizer_step(
    fresh, monkeypatch
):
    """The self-check compares the state the direct step creates at a
    parameter's first step with the one optimizer.step() creates (here in
    another key order, as its state_dict would show): where they differ,
    every step goes to optimizer.step()."""
    new_state = _direct_adam._new_state

    def reordered(p):
        state = new_state(p)
        return {key: state[key] for key in reversed(state)}

    monkeypatch.setattr(_direct_adam, "_new_state", reordered)
    _, plain, (direct_steps, _) = _direct_and_plain()
    assert direct_steps == plain.n_steps_
    assert list(plain.optimizer_.state_dict()["state"][0]) == ["step", "exp_avg", "exp_avg_sq"]


@pytest.mark.parametrize("value", ["0", "off", "False"])
def test_the_environment_switch_turns_the_direct_step_off_for_the_process(
    fresh, monkeypatch, value
):
    monkeypatch.setenv(_direct_adam.SWITCH, value)
    _, plain, (direct_steps, _) = _direct_and_plain()
    assert direct_steps == plain.n_steps_
    monkeypatch.setenv(_direct_adam.SWITCH, "1")  # read once, at the first step
    _, plain, (direct_steps, _) = _direct_and_plain()
    assert direct_steps == plain.n_steps_


def test_the_switch_left_on_keeps_the_direct_step(fresh, monkeypatch):
    monkeypatch.setenv(_direct_adam.SWITCH, "1")
    assert _direct_and_plain()[2][0] == 0


#: A private torch name the direct step reads, renamed as a newer torch
#: might: (the door's table, its stand-in, whether the direct step stays).
RENAMED = {
    "fused Adam kernels": ("ADAM_KERNELS", {False: "_gone", True: "_gone"}, False),
    "the optimizer's hook registries": ("OPTIMIZER_HOOKS", ("_gone", "_gone"), False),
    "global hook registries": ("GLOBAL_OPTIMIZER_HOOKS", ("_gone", "_gone"), False),
    "the scheduler's mark": ("SCHEDULER_WRAPPER", "_gone", False),
}


@pytest.mark.parametrize("name", list(RENAMED))
def test_a_missing_private_torch_name_leaves_the_step_to_optimizer_step(fresh, monkeypatch, name):
    table, stand_in, stays = RENAMED[name]
    monkeypatch.setattr(_internals, table, stand_in)
    scheduler = LRScheduler("StepLR", step_every="batch", step_size=3, gamma=0.5)
    _, plain, (direct_steps, _) = _direct_and_plain(callbacks=[scheduler])
    assert direct_steps == (0 if stays else plain.n_steps_)


@pytest.mark.parametrize(
    "register",
    [
        register_optimizer_step_pre_hook,
        register_optimizer_step_post_hook,
    ],
    ids=["pre", "post"],
)
def test_global_step_hooks_run_at_every_step(register):
    """A hook registered for every optimizer sees every step: those steps
    go to optimizer.step()."""
    calls = []
    handle = register(lambda *args: calls.append(1))
    try:
        est = NeuralRegressor(max_epochs=1, validation_fraction=None).fit(*_data())
    finally:
        handle.remove()
    assert len(calls) == est.n_steps_


@pytest.mark.parametrize(
    "change",
    [
        lambda optimizer, calls: optimizer.register_step_post_hook(lambda *a: calls.append(1)),
        lambda optimizer, calls: optimizer.param_groups[0].update(maximize=True),
    ],
    ids=["step hook", "maximize"],
)
def test_a_change_a_batch_hook_makes_mid_epoch_holds_from_the_next_step(fresh, change):
    """What the direct step gathered is taken again at the next steps only
    until a callback's hook runs: a step hook or an option a per-batch hook
    adds mid-epoch (after the 5th of 14 steps) sends every later step to
    optimizer.step()."""
    calls = []

    def at_step(ctx):
        if ctx.step == 5:
            change(ctx.optimizer, calls)

    changer = LambdaCallback(name="change", on_after_step=at_step)
    direct, plain, (direct_steps, plain_steps) = _direct_and_plain(callbacks=[changer])
    assert plain_steps == plain.n_steps_ == direct.n_steps_ == 14
    assert direct_steps == 14 - 5
    assert len(calls) in (0, 2 * 9)  # the hook saw the later steps of both fits


def test_step_counts_of_the_direct_step_count_on_under_optimizer_step(fresh):
    """A fit of direct steps continued by one of torch's own steps (its
    optimizer state, step counts included, carried over) ends as a fit of
    torch's steps throughout."""
    X, y = _data()
    params = dict(
        module=_TwoLayers, batch_size=32, max_epochs=1, validation_fraction=None, random_state=0
    )
    mixed = NeuralRegressor(warm_start=True, **params).fit(X, y)
    plain = NeuralRegressor(warm_start=True, fast_path=False, **params).fit(X, y)
    for est in (mixed, plain):
        est.set_params(fast_path=False, max_epochs=2).fit(X, y)
    _assert_same_model_and_state(mixed, plain)
    assert all(float(s["step"]) == mixed.n_steps_ > 7 for s in mixed.optimizer_.state.values())


def _replace_moments(optimizer):
    for p_state in optimizer.state.values():
        p_state["exp_avg"] = p_state["exp_avg"].clone()


@pytest.mark.parametrize(
    "change",
    [_replace_moments, lambda optimizer: optimizer.load_state_dict(optimizer.state_dict())],
    ids=["moments replaced", "state loaded"],
)
def test_state_a_batch_hook_replaces_mid_epoch_is_the_state_stepped(fresh, change):
    """The direct step keeps what it gathered across a callback's per-batch
    hook only while it holds: state tensors a hook replaces (or a loaded
    state) are the ones the next steps update, as optimizer.step() would."""

    def at_step(ctx):
        if ctx.step == 5:
            change(ctx.optimizer)

    changer = LambdaCallback(name="change", on_after_step=at_step)
    direct, plain, (direct_steps, plain_steps) = _direct_and_plain(callbacks=[changer])
    assert plain_steps == plain.n_steps_ == direct.n_steps_ == 14
    assert direct_steps == 0  # every step direct, on the state in place
