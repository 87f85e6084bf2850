"""Fine-tuning callbacks: Freezer, Initializer, LoadWeights and
WeightAveraging, through the public API."""

import io
import pickle
import warnings

import joblib
import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

import skcallback
from skcallback import NeuralRegressor
from skcallback.callbacks import (
    Checkpoint,
    Freezer,
    Initializer,
    LambdaCallback,
    LoadWeights,
    WeightAveraging,
)


class TwoLayers(nn.Module):
    """A user's module (the direct Adam step applies, the hand-derived
    MLP step does not); with ``norm=True`` a batch norm after the hidden
    layer."""

    def __init__(self, n_features_in, n_outputs, norm=False):
        super().__init__()
        self.hidden = nn.Linear(n_features_in, 6)
        self.norm = nn.BatchNorm1d(6) if norm else nn.Identity()
        self.out = nn.Linear(6, n_outputs)

    def forward(self, X):
        return self.out(torch.tanh(self.norm(self.hidden(X))))


def _make(*callbacks, **params):
    return NeuralRegressor(
        **{
            "hidden_layer_sizes": (6,),
            "batch_size": 30,
            "max_epochs": 3,
            "validation_fraction": None,
            "random_state": 0,
            "callbacks": list(callbacks),
            **params,
        }
    )


def _recorder(hook="on_epoch_end"):
    """A callback recording the module's state at ``hook`` (in ``.seen``)."""
    seen = []

    def record(ctx):
        seen.append({k: v.clone() for k, v in ctx.module.state_dict().items()})

    cb = LambdaCallback(name=f"record_{hook}", **{hook: record})
    cb.seen = seen
    return cb


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- Freezer -------------------------------------------------------------------
@pytest.mark.parametrize("fast_path", [True, False])
def test_frozen_parameters_stay_until_their_epoch_then_train(regression_data, fast_path):
    X, y = regression_data
    start, ends = _recorder("on_fit_begin"), _recorder()
    est = _make(
        Freezer("layers.0.*", unfreeze_at=3), start, ends, max_epochs=4, fast_path=fast_path
    ).fit(X, y)
    initial = start.seen[0]
    for epoch, state in enumerate(ends.seen, start=1):
        frozen = epoch < 3
        assert torch.equal(state["layers.0.weight"], initial["layers.0.weight"]) == frozen
        assert not torch.equal(state["layers.2.weight"], initial["layers.2.weight"])
    assert all(p.requires_grad for p in est.module_.parameters())


def test_the_fitted_module_gets_back_the_flags_it_was_built_with(regression_data):
    X, y = regression_data

    class Partly(TwoLayers):
        def __init__(self, n_features_in, n_outputs):
            super().__init__(n_features_in, n_outputs)
            self.out.bias.requires_grad_(False)

    est = _make(Freezer("out.*"), module=Partly).fit(X, y)  # never unfrozen in the fit
    assert est.module_.out.weight.requires_grad
    assert not est.module_.out.bias.requires_grad


def test_unfreezing_under_the_direct_adam_step_is_torchs_step_exactly(regression_data):
    X, y = regression_data
    direct, plain = (
        _make(Freezer("hidden.*", unfreeze_at=2), module=TwoLayers, fast_path=fast)
        for fast in (True, False)
    )
    with torch.autograd.profiler.profile() as prof:
        direct.fit(X, y)
    # the direct step takes every step, creating the unfrozen parameters'
    # state at their first one as torch's step would: torch's never runs
    assert sum(1 for e in prof.function_events if e.name.startswith("Optimizer.step#")) == 0
    plain.fit(X, y)
    assert _same(direct.module_.state_dict(), plain.module_.state_dict())
    mine, theirs = direct.optimizer_.state_dict(), plain.optimizer_.state_dict()
    for i, state in theirs["state"].items():
        for key, value in state.items():
            assert torch.equal(mine["state"][i][key], value)
    # The unfrozen parameters' Adam state began at their first gradient.
    steps = {
        name: float(direct.optimizer_.state[p]["step"])
        for name, p in (direct.module_.named_parameters())
    }
    assert steps["hidden.weight"] == direct.n_steps_ - 4 == steps["out.weight"] - 4


@pytest.mark.parametrize(
    ("cb", "message"),
    [
        (Freezer("layer.*"), r"Freezer: the pattern\(s\) \['layer.\*'\] match no parameter"),
        (Freezer(["layers.0.*", "head.*"]), r"\['head.\*'\] match no parameter"),
        (Freezer(7), "The 'patterns' parameter of Freezer must be a str"),
        (Freezer("*", unfreeze_at=0), "'unfreeze_at' parameter of Freezer must be None or"),
        (Initializer("x.*", torch.nn.init.zeros_), r"Initializer: the pattern\(s\)"),
        (Initializer("*", "zeros"), "'fn' parameter of Initializer must be a callable"),
        (LoadWeights("nowhere.pt"), "no file at 'nowhere.pt'"),
        (LoadWeights("w.pt", strict="yes"), "'strict' parameter of LoadWeights"),
        (WeightAveraging("sma"), "'kind' parameter of WeightAveraging must be 'ema' or 'swa'"),
        (WeightAveraging(decay=1.0), "'decay' parameter of WeightAveraging must be a number in"),
        (WeightAveraging(start_epoch=0), "'start_epoch' parameter"),
    ],
)
def test_configuration_errors_come_before_training(regression_data, cb, message):
    X, y = regression_data
    steps = []
    est = _make(cb, LambdaCallback(name="steps", on_after_step=steps.append))
    with pytest.raises((ValueError, OSError), match=message):
        est.fit(X, y)
    assert not steps
    assert not hasattr(est, "module_")


# -- Initializer ---------------------------------------------------------------
def test_the_initializer_applies_fn_reproducibly_and_leaves_the_global_rng(regression_data):
    X, y = regression_data

    def fitted(seed):
        start = _recorder("on_fit_begin")
        est = _make(
            Initializer("*.weight", torch.nn.init.orthogonal_),
            Initializer(
                "*.bias",
                torch.nn.init.zeros_,
            ),
            start,
            random_state=seed,
            max_epochs=1,
        )
        # Two Initializers need two names.
        est.set_params(callbacks=[("weights", est.callbacks[0]), *est.callbacks[1:]])
        return est.fit(X, y), start.seen[0]

    rng = torch.get_rng_state()
    (a, start_a), (b, start_b), (_, start_c) = fitted(0), fitted(0), fitted(1)
    assert torch.equal(torch.get_rng_state(), rng)
    assert _same(start_a, start_b) and _same(a.module_.state_dict(), b.module_.state_dict())
    assert not torch.equal(start_a["layers.0.weight"], start_c["layers.0.weight"])
    assert not start_a["layers.0.bias"].any()
    weight = start_a["layers.0.weight"]  # orthogonal rows (6 of 4 columns: columns)
    torch.testing.assert_close(weight.T @ weight, torch.eye(4), atol=1e-5, rtol=0)


def test_a_warm_start_is_not_initialised_again(regression_data):
    X, y = regression_data
    est = _make(Initializer("*", torch.nn.init.ones_)).fit(X, y)
    trained = {k: v.clone() for k, v in est.module_.state_dict().items()}
    start = _recorder("on_fit_begin")
    est.set_params(warm_start=True, callbacks=[*est.callbacks, start]).fit(X, y)
    assert _same(start.seen[0], trained)


# -- LoadWeights ---------------------------------------------------------------
@pytest.fixture
def pretrained(regression_data, tmp_path):
    """A fitted estimator, its weights saved with torch.save and as safetensors."""
    X, y = regression_data
    est = _make(max_epochs=5, random_state=7).fit(X, y)
    state = est.module_.state_dict()
    torch.save(state, tmp_path / "w.pt")
    save_file(state, tmp_path / "w.safetensors")
    return est, tmp_path


@pytest.mark.parametrize("name", ["w.pt", "w.safetensors"])
def test_loaded_weights_are_the_files_by_pattern(regression_data, pretrained, name):
    X, y = regression_data
    source, folder = pretrained
    start = _recorder("on_fit_begin")
    _make(LoadWeights(folder / name, patterns="layers.0.*"), start).fit(X, y)
    whole = _recorder("on_fit_begin")
    _make(LoadWeights(str(folder / name)), whole).fit(X, y)
    saved = source.module_.state_dict()
    assert _same(whole.seen[0], saved)
    assert torch.equal(start.seen[0]["layers.0.weight"], saved["layers.0.weight"])
    assert not torch.equal(start.seen[0]["layers.2.weight"], saved["layers.2.weight"])


def test_a_mismatch_is_listed_strictly_or_warned(regression_data, pretrained):
    X, y = regression_data
    _, folder = pretrained
    wider = dict(hidden_layer_sizes=(6, 3))  # layers.2 is now (3, 6); layers.4 is new
    with pytest.raises(ValueError) as info:
        _make(LoadWeights(folder / "w.pt"), **wider).fit(X, y)
    text = str(info.value)
    assert "missing from the file: ['layers.4.weight', 'layers.4.bias']" in text
    assert "shapes differ: layers.2.weight (1, 6) in the file, (3, 6) in the module" in text
    start = _recorder("on_fit_begin")
    with pytest.warns(UserWarning, match="missing from the file"):
        _make(LoadWeights(folder / "w.pt", strict=False), start, **wider).fit(X, y)
    assert torch.equal(
        start.seen[0]["layers.0.weight"], torch.load(folder / "w.pt")["layers.0.weight"]
    )
    torch.save({"extra": torch.zeros(2), **torch.load(folder / "w.pt")}, folder / "more.pt")
    with pytest.raises(ValueError, match=r"not in the module: \['extra'\]"):
        _make(LoadWeights(folder / "more.pt")).fit(X, y)


class Payload:
    def __reduce__(self):
        return (print, ("unpickled!",))


def test_a_file_carries_data_never_authority(regression_data, tmp_path, capsys):
    X, y = regression_data
    torch.save({"layers.0.weight": Payload()}, tmp_path / "code.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a file of weights" * 10)
    (tmp_path / "junk.safetensors").write_bytes(b"\xff" * 64)
    torch.save({"model": {"layers.0.weight": torch.zeros(6, 4)}}, tmp_path / "nested.pt")
    inf = {k: v.clone() for k, v in _make().fit(X, y).module_.state_dict().items()}
    inf["layers.0.bias"][0] = float("inf")
    torch.save(inf, tmp_path / "inf.pt")
    for name, message in [
        ("code.pt", "never unpickled"),
        ("junk.pt", "cannot read"),
        ("junk.safetensors", "cannot read"),
        ("nested.pt", r"holds dicts under \['model'\]"),
        ("inf.pt", "'layers.0.bias' is not finite"),
    ]:
        with pytest.raises(ValueError, match=message):
            _make(LoadWeights(tmp_path / name)).fit(X, y)
    assert "unpickled!" not in capsys.readouterr().out


# -- WeightAveraging -----------------------------------------------------------
def test_ema_is_the_moving_average_of_the_weights_after_each_step(regression_data):
    X, y = regression_data
    steps = _recorder("on_after_step")
    est = _make(WeightAveraging(decay=0.8, start_epoch=2), steps).fit(X, y)
    per_epoch = len(steps.seen) // 3
    expected = None
    for state in steps.seen[per_epoch:]:  # from the first step of epoch 2
        if expected is None:
            expected = {k: v.clone() for k, v in state.items()}
        else:
            for k in expected:
                expected[k] = 0.8 * expected[k] + 0.2 * state[k]
    for k, v in est.module_.state_dict().items():
        torch.testing.assert_close(v, expected[k], rtol=1e-6, atol=1e-7)
    assert est.callbacks_.weight_averaging.n_averaged_ == len(steps.seen) - per_epoch


def test_swa_is_the_mean_of_epoch_weights_with_batch_norm_recomputed(regression_data):
    X, y = regression_data
    ends = _recorder()
    est = _make(
        WeightAveraging("swa", start_epoch=2),
        ends,
        module=TwoLayers,
        module__norm=True,
        batch_size=40,  # 3 equal batches: the mean of batch means is the mean
        max_epochs=4,
    ).fit(X, y)
    state = est.module_.state_dict()
    for name, _ in est.module_.named_parameters():
        mean = sum(s[name] for s in ends.seen[1:]) / 3
        torch.testing.assert_close(state[name], mean, rtol=1e-5, atol=1e-6)
    hidden = est.module_.hidden(torch.as_tensor(X)).detach()
    torch.testing.assert_close(state["norm.running_mean"], hidden.mean(0), rtol=1e-4, atol=1e-5)
    assert not torch.equal(state["norm.running_mean"], ends.seen[-1]["norm.running_mean"])


def test_validation_may_use_the_average_without_changing_training(regression_data):
    X, y = regression_data
    plain, averaged = (
        _make(
            WeightAveraging(decay=0.5, use_for_validation=flag),
            validation_fraction=0.2,
            max_epochs=2,
        ).fit(X, y)
        for flag in (False, True)
    )
    assert plain.history_.get("train_loss") == averaged.history_.get("train_loss")
    assert plain.history_.get("valid_loss") != averaged.history_.get("valid_loss")
    assert _same(plain.module_.state_dict(), averaged.module_.state_dict())


def test_averaging_keeps_no_copy_after_the_fit_and_refuses_partial_fit(regression_data):
    X, y = regression_data
    est = _make(WeightAveraging()).fit(X, y)
    assert est.callbacks_.weight_averaging.state_dict()["average"] is None
    plain = _make().fit(X, y)
    assert len(pickle.dumps(est)) < len(pickle.dumps(plain)) + 2000
    with pytest.raises(ValueError, match="used with fit, not partial_fit"):
        _make(WeightAveraging()).partial_fit(X, y)


# -- every callback: clone, search, pipeline, persistence, exact resume ---------
def _all(folder):
    return [
        LoadWeights(folder / "w.pt", patterns="layers.0.*"),
        Initializer("layers.2.weight", torch.nn.init.xavier_uniform_),
        Freezer("layers.0.*", unfreeze_at=2),
        WeightAveraging(decay=0.9),
    ]


def test_each_callback_clones_pickles_and_round_trips_its_parameters(pretrained):
    _, folder = pretrained
    for cb in _all(folder):
        copy = clone(cb)
        assert copy.get_params() == cb.get_params() and copy is not cb
        assert pickle.loads(pickle.dumps(cb)).get_params() == cb.get_params()
        assert type(cb)(**cb.get_params()).get_params() == cb.get_params()


def test_a_grid_over_the_callbacks_parameters_in_a_pipeline(regression_data, pretrained):
    X, y = regression_data
    _, folder = pretrained
    pipe = make_pipeline(StandardScaler(), _make(*_all(folder)))
    grid = {
        "neuralregressor__cb__freezer__unfreeze_at": [2, None],
        "neuralregressor__cb__weight_averaging__kind": ["ema", "swa"],
    }
    search = GridSearchCV(pipe, grid, cv=2).fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    fitted = search.best_estimator_[-1].callbacks_
    assert (
        fitted.weight_averaging.kind
        == search.best_params_["neuralregressor__cb__weight_averaging__kind"]
    )


def test_a_fitted_estimator_survives_joblib_and_save_load(regression_data, pretrained, tmp_path):
    X, y = regression_data
    _, folder = pretrained
    est = _make(*_all(folder)).fit(X, y)
    buffer = io.BytesIO()
    joblib.dump(est, buffer)
    buffer.seek(0)
    again = joblib.load(buffer)
    skcallback.save(est, tmp_path / "model.skc")
    loaded = skcallback.load(tmp_path / "model.skc", trusted=["torch.nn.init.xavier_uniform_"])
    for other in (again, loaded):
        np.testing.assert_array_equal(other.predict(X), est.predict(X))
        assert other.callbacks_.freezer.get_params() == est.callbacks_.freezer.get_params()


CRASH_AT = [None]


def _crash(ctx):
    if ctx.step == CRASH_AT[0]:
        raise RuntimeError("simulated crash")


@pytest.mark.parametrize(
    "make_callbacks",
    [
        lambda: [Freezer("layers.0.*", unfreeze_at=3)],
        lambda: [WeightAveraging(decay=0.7, start_epoch=2, use_for_validation=True)],
        lambda: [WeightAveraging("swa", start_epoch=2)],
    ],
    ids=["freezer", "ema", "swa"],
)
@pytest.mark.parametrize("crash_at", [9, 14])
def test_a_crashed_fit_resumes_bit_for_bit(regression_data, tmp_path, make_callbacks, crash_at):
    X, y = regression_data

    def make(folder):
        return _make(
            Checkpoint(dirname=folder, every_n_steps=3, resume=True),
            *make_callbacks(),
            LambdaCallback(name="crash", on_after_step=_crash),
            max_epochs=5,
            validation_fraction=0.2,
        )

    reference = make(tmp_path / "reference").fit(X, y)
    CRASH_AT[0] = crash_at
    try:
        with pytest.raises(RuntimeError, match="simulated crash"):
            make(tmp_path / "run").fit(X, y)
    finally:
        CRASH_AT[0] = None
    resumed = make(tmp_path / "run").fit(X, y)
    assert resumed.callbacks_.checkpoint.resumed_from_ is not None
    assert _same(resumed.module_.state_dict(), reference.module_.state_dict())
    assert resumed.history_.get("valid_loss") == reference.history_.get("valid_loss")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(resumed.predict(X), reference.predict(X))
