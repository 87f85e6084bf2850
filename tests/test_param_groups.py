"""``optimizer__param_groups``: per-parameter optimizer options by name
pattern, checked before training, tunable, saved and resumed exactly."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

import skcallback
from skcallback import NeuralRegressor
from skcallback.callbacks import Checkpoint, LambdaCallback, LRScheduler


class TwoLayers(nn.Module):
    """A user's module: ``hidden.*`` and ``out.*`` parameters."""

    def __init__(self, n_features_in, n_outputs):
        super().__init__()
        self.hidden = nn.Linear(n_features_in, 6)
        self.out = nn.Linear(6, n_outputs)

    def forward(self, X):
        return self.out(torch.tanh(self.hidden(X)))


def _make(**params):
    return NeuralRegressor(
        **{
            "hidden_layer_sizes": (6,),
            "batch_size": 32,
            "max_epochs": 3,
            "validation_fraction": None,
            "random_state": 0,
            **params,
        }
    )


def _initial(est, X, y):
    """The module's weights before the first step of ``est``'s fit."""
    seen = {}

    def record(ctx):
        seen.update({k: v.clone() for k, v in ctx.module.state_dict().items()})

    est.set_params(callbacks=[LambdaCallback(name="record", on_fit_begin=record)])
    est.fit(X, y)
    return seen


def test_each_pattern_gives_its_parameters_its_options_first_match_wins(regression_data):
    X, y = regression_data
    groups = [("layers.0.*", {"lr": 0.0}), ("layers.*", {"lr": 0.05})]
    est = _make(optimizer__param_groups=groups)
    before = _initial(est, X, y)
    after = est.module_.state_dict()
    # lr=0: the first layer (first match) never moves; the rest train.
    assert torch.equal(after["layers.0.weight"], before["layers.0.weight"])
    assert torch.equal(after["layers.0.bias"], before["layers.0.bias"])
    assert not torch.equal(after["layers.2.weight"], before["layers.2.weight"])
    assert [g["lr"] for g in est.optimizer_.param_groups] == [0.0, 0.05]


def test_parameters_no_pattern_matches_get_the_estimators_options(regression_data):
    X, y = regression_data
    est = _make(lr=0.02, optimizer__param_groups=[("*.weight", {"lr": 0.0})])
    before = _initial(est, X, y)
    after = est.module_.state_dict()
    assert torch.equal(after["layers.0.weight"], before["layers.0.weight"])
    assert not torch.equal(after["layers.0.bias"], before["layers.0.bias"])
    # The estimator's group comes first: the recorded lr is the estimator's.
    assert est.history_.get("lr") == [0.02] * 3


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ("layers.0.*", "must be a list of \\(pattern, \\{option: value\\}\\) pairs"),
        ([("layers.0.*", 0.1)], "its entry \\('layers.0.\\*', 0.1\\) is not one"),
        ([(0, {"lr": 0.1})], "is not one"),
        ([("layer.0.*", {"lr": 0.1})], "'layer.0.\\*' matches no parameter; .*layers.0.weight"),
        ([("*", {}), ("layers.0.*", {})], "matches no parameter that an earlier pattern"),
        ([("layers.0.*", {"momentum": 0.9})], "sets \\['momentum'\\], which Adam does not take"),
        ([("layers.0.*", {"lr": -1.0})], "group of options \\{'lr': -1.0\\}.*Invalid learning"),
        ([("layers.0.*", {"betas": (0.9,)})], "group of options \\{'betas': \\(0.9,\\)\\}"),
        ([("layers.0.*", {"params": []})], "name 'params'"),
    ],
)
def test_a_bad_spec_is_an_error_in_our_words_before_training(regression_data, groups, message):
    X, y = regression_data
    steps = []
    est = _make(
        optimizer__param_groups=groups,
        callbacks=[LambdaCallback(name="steps", on_after_step=steps.append)],
    )
    with pytest.raises(ValueError, match=message):
        est.fit(X, y)
    assert not steps
    assert not hasattr(est, "module_")


def test_the_direct_adam_step_honours_each_groups_options_bit_for_bit(regression_data):
    """fast_path=True steps Adam by its kernel, group by group: the model and
    optimizer state are those of torch's optimizer.step() exactly."""
    X, y = regression_data
    groups = [
        ("hidden.*", {"lr": 0.003, "weight_decay": 0.1, "betas": (0.8, 0.99)}),
        ("out.bias", {"eps": 1e-6}),
    ]
    direct, plain = (
        _make(module=TwoLayers, optimizer__param_groups=groups, fast_path=fast)
        for fast in (True, False)
    )
    with torch.autograd.profiler.profile() as prof:
        direct.fit(X, y)
    steps = sum(1 for e in prof.function_events if e.name.startswith("Optimizer.step#"))
    assert steps == 0  # the kernel takes every step, the first (creating the state) too
    plain.fit(X, y)
    for a, b in zip(direct.module_.parameters(), plain.module_.parameters(), strict=True):
        assert torch.equal(a, b)
    mine, theirs = direct.optimizer_.state_dict(), plain.optimizer_.state_dict()
    assert mine["param_groups"] == theirs["param_groups"]
    for i, state in theirs["state"].items():
        for key, value in state.items():
            assert torch.equal(mine["state"][i][key], value)


def test_an_lr_scheduler_scales_each_group(regression_data):
    X, y = regression_data
    est = _make(
        lr=0.01,
        optimizer__param_groups=[("layers.0.*", {"lr": 0.001})],
        callbacks=[LRScheduler("StepLR", step_size=1, gamma=0.5)],
    ).fit(X, y)
    assert [g["lr"] for g in est.optimizer_.param_groups] == pytest.approx(
        [0.01 * 0.5**3, 0.001 * 0.5**3]
    )


def test_a_grid_search_tunes_the_groups_in_a_pipeline(regression_data):
    X, y = regression_data
    options = [[("layers.0.*", {"lr": 0.0})], [("layers.2.*", {"lr": 0.05})]]
    est = _make(optimizer__param_groups=options[0])
    copy = clone(est)
    assert copy.get_params()["optimizer__param_groups"] == options[0]
    search = GridSearchCV(
        make_pipeline(StandardScaler(), est),
        {"neuralregressor__optimizer__param_groups": options},
        cv=2,
    ).fit(X, y)
    assert search.best_params_["neuralregressor__optimizer__param_groups"] in options
    fitted = search.best_estimator_[-1]
    assert len(fitted.optimizer_.param_groups) == 2


def test_save_load_and_pickle_keep_each_groups_options_and_state(regression_data, tmp_path):
    X, y = regression_data
    est = _make(
        module=TwoLayers, optimizer__param_groups=[("hidden.*", {"lr": 0.003, "eps": 1e-6})]
    ).fit(X, y)
    skcallback.save(est, tmp_path / "model.skc")
    loaded = skcallback.load(tmp_path / "model.skc", trusted=[f"{__name__}.TwoLayers"])
    copied = pickle.loads(pickle.dumps(est))

    def options(estimator):
        return [
            {k: v for k, v in group.items() if k != "params"}
            for group in estimator.optimizer_.param_groups
        ]

    assert options(loaded) == options(copied) == options(est)
    # Continued, both train on exactly as the original does.
    for other in (est, loaded, copied):
        other.set_params(warm_start=True, max_epochs=2).fit(X, y)
    for other in (loaded, copied):
        for a, b in zip(other.module_.parameters(), est.module_.parameters(), strict=True):
            assert torch.equal(a, b)


def test_a_loaded_estimator_continues_with_the_groups_its_parameters_give(
    regression_data, tmp_path
):
    X, y = regression_data
    est = _make(optimizer__param_groups=[("layers.0.*", {"lr": 0.003})]).fit(X, y)
    skcallback.save(est, tmp_path / "model.skc")
    loaded = skcallback.load(tmp_path / "model.skc")
    loaded.set_params(optimizer__param_groups=[("layers.0.*", {"lr": 0.004})])
    # The parameters decide: the loaded estimator continues with lr=0.004.
    loaded.set_params(warm_start=True, max_epochs=1).fit(X, y)
    assert loaded.optimizer_.param_groups[1]["lr"] == 0.004


def test_a_warm_start_with_other_groups_keeps_each_parameters_state(regression_data):
    X, y = regression_data
    est = _make(optimizer__param_groups=[("layers.0.*", {"lr": 0.003})]).fit(X, y)
    steps = est.n_steps_
    est.set_params(
        warm_start=True, max_epochs=1, optimizer__param_groups=[("*.bias", {"lr": 0.02})]
    ).fit(X, y)
    groups = est.optimizer_.param_groups
    assert [g["lr"] for g in groups] == [0.001, 0.02]
    names = {id(p): n for n, p in est.module_.named_parameters()}
    assert [names[id(p)] for p in groups[1]["params"]] == ["layers.0.bias", "layers.2.bias"]
    # Adam's step counts went on: each parameter kept its moments.
    counts = {float(s["step"]) for s in est.optimizer_.state.values()}
    assert est.n_steps_ > steps
    assert counts == {est.n_steps_}


CRASH_AT = [None]


def _crash(ctx):
    if ctx.step == CRASH_AT[0]:
        raise RuntimeError("simulated crash")


def test_a_crashed_fit_with_groups_and_a_schedule_resumes_bit_for_bit(regression_data, tmp_path):
    X, y = regression_data

    def make(folder):
        return _make(
            max_epochs=4,
            optimizer__param_groups=[("layers.0.*", {"lr": 0.003, "weight_decay": 0.01})],
            callbacks=[
                Checkpoint(dirname=folder, every_n_steps=3, resume=True),
                LRScheduler("StepLR", step_size=2, step_every="batch", gamma=0.7),
                LambdaCallback(name="crash", on_after_step=_crash),
            ],
        )

    reference = make(tmp_path / "reference").fit(X, y)
    CRASH_AT[0] = 8
    try:
        with pytest.raises(RuntimeError, match="simulated crash"):
            make(tmp_path / "run").fit(X, y)
    finally:
        CRASH_AT[0] = None
    resumed = make(tmp_path / "run").fit(X, y)
    assert resumed.callbacks_.checkpoint.resumed_from_ is not None
    for a, b in zip(resumed.module_.parameters(), reference.module_.parameters(), strict=True):
        assert torch.equal(a, b)
    assert [g["lr"] for g in resumed.optimizer_.param_groups] == [
        g["lr"] for g in reference.optimizer_.param_groups
    ]
    np.testing.assert_array_equal(resumed.predict(X), reference.predict(X))
