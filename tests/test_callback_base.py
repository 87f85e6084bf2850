"""The Callback protocol: names, order, cloning, state, the callbacks_ mapping."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone

from skcallback import Callback, NeuralRegressor
from skcallback.callbacks import (
    HOOKS,
    Checkpoint,
    CSVLogger,
    EarlyStopping,
    EpochScoring,
    GradientClipping,
    History,
    LambdaCallback,
    LossMonitor,
    LRScheduler,
    MetricLogger,
    PrintLog,
    ProgressBar,
    TerminateOnNaN,
    TimeLimit,
    TimeMonitor,
)


class CustomLogger(Callback):
    def __init__(self, alpha=0.1):
        self.alpha = alpha

    def on_train_batch_end(self, ctx):
        loss = ctx.loss.item()
        previous = getattr(self, "moving_loss_", None)
        self.moving_loss_ = (
            loss if previous is None else self.alpha * loss + (1 - self.alpha) * previous
        )


ORDER_LOG = []


class Order(Callback):
    def __init__(self, order=0):
        self.order = order

    def on_epoch_end(self, ctx):
        ORDER_LOG.append(self.order)


@pytest.mark.parametrize(
    ("cls", "name"),
    [(CustomLogger, "custom_logger"), (History, "history"), (PrintLog, "print_log")],
)
def test_default_name_is_the_snake_case_class_name(cls, name):
    assert cls().name == name


def test_csv_style_acronyms_become_one_word():
    class CSVLogger(Callback):
        pass

    assert CSVLogger().name == "csv_logger"


def test_pairs_override_names_and_duplicates_are_an_error(regression_data):
    X, y = regression_data
    est = NeuralRegressor(
        callbacks=[("a", CustomLogger()), ("b", CustomLogger())], max_epochs=1
    ).fit(X, y)
    assert list(est.callbacks_) == ["history", "a", "b"]
    with pytest.raises(ValueError, match=r"unique.*custom_logger"):
        NeuralRegressor(callbacks=[CustomLogger(), CustomLogger()]).fit(X, y)


def test_callbacks_run_by_order_then_position(regression_data):
    X, y = regression_data
    ORDER_LOG.clear()
    est = NeuralRegressor(
        callbacks=[("late", Order(5)), ("first", Order(-1)), ("tie", Order(5))],
        max_epochs=1,
    ).fit(X, y)
    assert list(est.callbacks_) == ["history", "first", "late", "tie"]
    assert ORDER_LOG == [-1, 5, 5]


def test_the_users_callbacks_are_never_mutated(regression_data):
    X, y = regression_data
    logger = CustomLogger(alpha=0.5)
    est = NeuralRegressor(callbacks=[logger], max_epochs=2, cb__custom_logger__alpha=0.2)
    est.fit(X, y)
    assert vars(logger) == {"alpha": 0.5}
    fitted = est.callbacks_["custom_logger"]
    assert fitted is not logger and fitted.alpha == 0.2
    assert hasattr(fitted, "moving_loss_")
    assert est.callbacks[0] is logger


def test_callbacks_mapping_supports_items_and_attributes(regression_data):
    X, y = regression_data
    est = NeuralRegressor(callbacks=[CustomLogger()], max_epochs=1).fit(X, y)
    assert est.callbacks_.custom_logger is est.callbacks_["custom_logger"]
    assert est.history_ is est.callbacks_.history
    with pytest.raises(KeyError, match="custom_logger"):
        est.callbacks_["nope"]
    with pytest.raises(AttributeError, match="nope"):
        _ = est.callbacks_.nope


def test_default_state_dict_holds_the_underscore_attributes():
    cb = CustomLogger(alpha=0.3)
    cb.moving_loss_ = 1.5
    cb._private = "not state"
    assert cb.state_dict() == {"moving_loss_": 1.5}
    other = CustomLogger()
    other.load_state_dict(cb.state_dict())
    assert other.moving_loss_ == 1.5
    with pytest.raises(TypeError, match="expects a dict"):
        other.load_state_dict([1])


@pytest.mark.parametrize(
    "callback",
    [CustomLogger(alpha=0.7), History(), PrintLog(keys=["epoch"]), LambdaCallback(name="x")],
)
def test_callbacks_round_trip_through_clone_params_and_pickle(callback):
    cloned = clone(callback)
    assert cloned is not callback
    assert cloned.get_params() == callback.get_params()
    restored = pickle.loads(pickle.dumps(callback))
    assert type(restored) is type(callback)
    assert restored.get_params().keys() == callback.get_params().keys()
    params = callback.get_params()
    assert cloned.set_params(**params) is cloned


def test_set_params_rejects_unknown_names():
    with pytest.raises(ValueError, match=r"Invalid parameter 'beta'.*\['alpha'\]"):
        CustomLogger().set_params(beta=1)


def test_lambda_callback_rejects_unknown_hooks_and_clones_its_functions():
    def f(ctx):
        return None

    cb = LambdaCallback(name="mine", on_epoch_end=f)
    assert clone(cb).get_params() == {"name": "mine", "on_epoch_end": f}
    with pytest.raises(TypeError, match="on_epoch_ned"):
        LambdaCallback(on_epoch_ned=f)


def test_history_is_always_first_and_can_be_read(regression_data):
    X, y = regression_data
    est = NeuralRegressor(max_epochs=3, random_state=0).fit(X, y)
    assert list(est.callbacks_) == ["history"]
    assert [r["epoch"] for r in est.history_] == [1, 2, 3]
    assert set(est.history_[0]) == {"epoch", "train_loss", "valid_loss", "lr", "dur"}
    assert est.history_.get("lr") == [1e-3] * 3
    with pytest.raises(KeyError, match="recorded keys"):
        est.history_.get("valid_acc")
    frame = est.history_.to_dataframe()
    assert list(frame["epoch"]) == [1, 2, 3]


def test_print_log_writes_a_table_with_best_values_marked(regression_data):
    X, y = regression_data
    lines = []
    NeuralRegressor(
        callbacks=[PrintLog(keys=["epoch", "train_loss"], sink=lines.append)],
        max_epochs=3,
        lr=1e-2,
        random_state=0,
    ).fit(X, y)
    assert lines[0].split() == ["epoch", "train_loss"]
    assert len(lines) == 5
    assert lines[2].rstrip().endswith("*")  # the first value is the best so far


def test_verbose_adds_print_log(regression_data, capsys):
    X, y = regression_data
    est = NeuralRegressor(max_epochs=2, verbose=1).fit(X, y)
    assert "print_log" in est.callbacks_
    out = capsys.readouterr().out
    assert "train_loss" in out and "valid_loss" in out


class Misspelt(Callback):
    def on_epoch_ends(self, ctx):
        pass


def test_a_misspelt_hook_is_an_error_with_a_suggestion(regression_data):
    X, y = regression_data
    with pytest.raises(ValueError, match=r"'on_epoch_ends', which is not a hook.*'on_epoch_end'"):
        NeuralRegressor(callbacks=[Misspelt()], max_epochs=1).fit(X, y)


def _fit_defining(name, data):
    """The error of a fit whose callback defines a method ``name``."""
    ported = type("Ported", (Callback,), {name: lambda self, ctx: None})
    with pytest.raises(ValueError, match="which is not a hook") as error:
        NeuralRegressor(callbacks=[ported()], max_epochs=1).fit(*data)
    return str(error.value)


@pytest.mark.parametrize(
    "theirs, ours",
    [
        ("on_train_step_end", "on_train_batch_end"),  # MindSpore
        ("on_train_step_begin", "on_train_batch_begin"),
        ("on_train_epoch_end", "on_epoch_end"),
        ("on_eval_step_end", "on_valid_batch_end"),
        ("on_batch_begin", "on_train_batch_begin"),  # mlr3torch, Keras, skorch
        ("on_batch_end", "on_train_batch_end"),
        ("on_before_valid", "on_train_end"),  # mlr3torch: every epoch
        ("on_batch_valid_end", "on_valid_batch_end"),
        ("on_begin", "on_fit_begin"),
        ("on_end", "on_fit_end"),
        ("on_exit", "on_fit_end"),  # runs after a failure too, as ours
        ("on_train_batch_after_pred", "on_after_forward"),  # luz
        ("on_valid_batch_after_loss", "on_after_loss"),
        ("on_train_batch_before_step", "on_before_step"),
        ("on_fit_start", "on_fit_begin"),  # Lightning
        ("on_before_optimizer_step", "on_before_step"),
        ("on_grad_computed", "on_after_backward"),  # skorch
    ],
)
def test_another_frameworks_hook_name_is_an_error_naming_ours(regression_data, theirs, ours):
    message = _fit_defining(theirs, regression_data)
    assert f"{theirs} is {ours!r} here" in message


def test_every_hook_name_of_the_porting_table_names_a_hook_of_ours(regression_data):
    from skcallback.callbacks._hook_names import HOOK_NAMES

    frameworks = {entry.framework for entry in HOOK_NAMES}
    seeds = {"MXNet (R)", "luz", "MindSpore", "mlr3torch"}
    assert frameworks == seeds | {"Keras", "Lightning", "skorch"}
    for entry in HOOK_NAMES:
        assert entry.ours in HOOKS or (entry.ours is None and entry.note), entry
    for name in {e.name for e in HOOK_NAMES if e.name.startswith("on_")} - set(HOOKS):
        message = _fit_defining(name, regression_data)
        for entry in HOOK_NAMES:
            if entry.name == name:
                expected = f"{name} is {entry.ours!r} here" if entry.ours else "no equivalent"
                assert expected in message and entry.note in message, (entry, message)


def test_the_docs_show_the_porting_table_of_the_code():
    from pathlib import Path

    from skcallback.callbacks._hook_names import markdown_table

    page = (Path(__file__).parents[1] / "docs" / "frameworks.md").read_text()
    shown = page.split("<!-- hook-names:")[1].split("-->\n", 1)[1].split("<!-- end hook-names")[0]
    assert shown == markdown_table(), (
        "docs/frameworks.md's hook table differs from skcallback/callbacks/_hook_names.py: "
        "paste markdown_table()'s output between its markers"
    )


def test_an_order_or_name_set_on_an_instance_survives_cloning(regression_data):
    X, y = regression_data
    calls = []
    first = LambdaCallback(name="first", on_epoch_end=lambda ctx: calls.append("first"))
    late = LambdaCallback(name="late", on_epoch_end=lambda ctx: calls.append("late"))
    late.order = -100  # runs before "first" although listed after it
    est = NeuralRegressor(callbacks=[first, late], max_epochs=1)
    clone(est).fit(X, y)
    assert calls == ["late", "first"]
    assert clone(late).order == -100 and "order" not in vars(clone(first))


# -- the Callback protocol (API.md) ----------------------------------------------
class Quiet(Callback):
    """Overrides no hook at all."""


def test_hooks_are_optional(regression_data):
    X, y = regression_data
    est = NeuralRegressor(callbacks=[Quiet()], max_epochs=2).fit(X, y)
    assert list(est.callbacks_) == ["history", "quiet"] and est.n_iter_ == 2


def test_the_default_order_is_zero_between_lower_and_higher_orders(regression_data):
    X, y = regression_data
    assert Callback.order == 0 and Quiet().order == 0
    calls = []

    def named(name, order=None):
        cb = LambdaCallback(name=name, on_epoch_end=lambda ctx: calls.append(name))
        if order is not None:
            cb.order = order
        return cb

    est = NeuralRegressor(
        callbacks=[named("late", 1), named("default"), named("early", -1)], max_epochs=1
    ).fit(X, y)
    assert calls == ["early", "default", "late"]
    assert list(est.callbacks_) == ["history", "early", "default", "late"]


def test_early_stopping_runs_after_every_ordinary_callback(regression_data):
    X, y = regression_data
    est = NeuralRegressor(
        callbacks=[
            EarlyStopping(patience=10),
            LambdaCallback(name="after", on_epoch_end=lambda ctx: None),
            EpochScoring("r2"),
            LRScheduler("StepLR", step_size=1),
            PrintLog(sink=lambda line: None),
            TimeMonitor(sink=None),
        ],
        max_epochs=1,
        verbose=2,
    ).fit(X, y)
    names = list(est.callbacks_)
    assert names[0] == "history" and names[-1] == "early_stopping"


def test_early_stopping_runs_last_but_for_checkpoint(regression_data, tmp_path):
    """EarlyStopping runs after every ordinary callback; only Checkpoint runs
    later, so that a file holds EarlyStopping's state of that epoch."""
    X, y = regression_data
    est = NeuralRegressor(
        callbacks=[EarlyStopping(patience=10), Checkpoint(dirname=tmp_path)], max_epochs=1
    ).fit(X, y)
    assert list(est.callbacks_)[-2:] == ["early_stopping", "checkpoint"]


@pytest.mark.parametrize("how", ["pair", "cb__history"])
def test_a_callback_named_history_cannot_replace_the_history(regression_data, how):
    X, y = regression_data
    params = {"callbacks": [("history", Quiet())]} if how == "pair" else {"cb__history": Quiet()}
    with pytest.raises(ValueError, match=r"'history' is reserved for a History"):
        NeuralRegressor(max_epochs=2, **params).fit(X, y)


@pytest.mark.parametrize("how", ["pair", "cb__history"])
def test_a_history_subclass_may_replace_the_history_and_is_history_(regression_data, how):
    class TaggedHistory(History):
        pass

    X, y = regression_data
    mine = TaggedHistory()
    params = {"callbacks": [("history", mine)]} if how == "pair" else {"cb__history": mine}
    est = NeuralRegressor(max_epochs=2, verbose=0, **params).fit(X, y)
    assert type(est.history_) is TaggedHistory and len(est.history_) == 2
    assert est.history_ is est.callbacks_["history"]
    assert next(iter(est.callbacks_)) == "history"


def _every_builtin(tmp_path):
    return [
        EarlyStopping(patience=10),
        Checkpoint(dirname=tmp_path / "ckpt", monitor="valid_loss"),
        LRScheduler("StepLR", step_size=1),
        EpochScoring("r2"),
        PrintLog(sink=lambda line: None),
        LossMonitor(sink=lambda line: None),
        MetricLogger(every=1, sink=lambda line: None),
        TimeMonitor(sink=None),
        ProgressBar(),
        TimeLimit(60),
        TerminateOnNaN(),
        GradientClipping(10.0),
        CSVLogger(tmp_path / "log.csv"),
        LambdaCallback(on_epoch_end=lambda ctx: None),
    ]


def test_what_a_callback_learns_lives_in_underscore_attributes_of_the_fit_copy(
    regression_data, tmp_path
):
    X, y = regression_data
    given = _every_builtin(tmp_path)
    before = [dict(vars(cb)) for cb in given]
    est = NeuralRegressor(callbacks=given, max_epochs=2, random_state=0).fit(X, y)
    assert [dict(vars(cb)) for cb in given] == before  # the given callbacks are untouched
    for name, fitted in est.callbacks_.items():
        params = set(fitted.get_params())
        public = {k for k in vars(fitted) if not k.startswith("_")} - params - {"name", "order"}
        assert all(key.endswith("_") for key in public), (name, public)
        assert fitted not in given
    learned = {name: set(cb.state_dict()) for name, cb in est.callbacks_.items()}
    assert {"best_score_", "best_epoch_", "stopped_epoch_"} <= learned["early_stopping"]
    assert learned["checkpoint"] == {"best_score", "best_name"}  # never a path
    assert {"train_", "valid_"} <= learned["metric_logger"]
    assert {"epoch_times_", "step_time_"} <= learned["time_monitor"]


def test_state_dict_round_trips_a_fitted_builtin(regression_data, scripted):
    X, y = regression_data
    est = NeuralRegressor(
        callbacks=[scripted([3.0, 1.0, 2.0, 2.5]), EarlyStopping(patience=2)], max_epochs=6
    ).fit(X, y)
    fitted = est.callbacks_["early_stopping"]
    fresh = EarlyStopping(patience=2)
    fresh.load_state_dict(fitted.state_dict())
    assert (fresh.best_score_, fresh.best_epoch_, fresh.stopped_epoch_) == (1.0, 2, 4)
    assert fresh.state_dict().keys() == fitted.state_dict().keys()


class Count(Callback):
    def on_epoch_end(self, ctx):
        self.epochs_ = getattr(self, "epochs_", 0) + 1


def test_nothing_leaks_between_fits_of_one_estimator(regression_data, scripted):
    X, y = regression_data
    counter = Count()
    est = NeuralRegressor(
        callbacks=[counter, scripted([3.0, 2.0, 9.0]), EarlyStopping(patience=5)], max_epochs=2
    )
    est.fit(X, y)
    first = est.callbacks_["count"]
    est.set_params(cb__script_valid_loss=scripted([9.0, 8.0, 7.0])).fit(X, y)
    second = est.callbacks_["count"]
    assert second is not first and (first.epochs_, second.epochs_) == (2, 2)
    assert est.callbacks_["early_stopping"].best_score_ == 8.0  # not 2.0 from the first fit
    assert not hasattr(counter, "epochs_")


class _Writer:
    """A live resource: it refuses to be copied, as a SummaryWriter does."""

    def __init__(self):
        self.scalars = []

    def __deepcopy__(self, memo):
        raise TypeError("cannot copy a writer")


class WritesLosses(Callback):
    shared_params = ("writer",)

    def __init__(self, writer=None, tag="loss"):
        self.writer = writer
        self.tag = tag

    def on_epoch_end(self, ctx):
        self.writer.scalars.append((self.tag, ctx.epoch))


def test_shared_params_reach_every_fit_of_a_search(regression_data):
    from sklearn.model_selection import GridSearchCV

    writer = _Writer()
    cb = WritesLosses(writer)
    assert clone(cb).writer is writer
    X, y = regression_data
    est = NeuralRegressor(max_epochs=2, random_state=0, callbacks=[cb])
    GridSearchCV(est, {"cb__writes_losses__tag": ["a", "b"]}, cv=2).fit(X, y)
    # 2 candidates x 2 folds + the refit, 2 epochs each, all in one writer
    assert len(writer.scalars) == 10
    assert {tag for tag, _ in writer.scalars} == {"a", "b"}


def test_unshared_live_parameters_fail_with_a_clear_error(regression_data):
    class Unshared(WritesLosses):
        shared_params = ()

    est = NeuralRegressor(max_epochs=1, callbacks=[Unshared(_Writer())])
    with pytest.raises(TypeError, match="cannot be cloned"):
        est.fit(*regression_data)


def test_repr_shows_changed_parameters_only():
    assert repr(EarlyStopping()) == "EarlyStopping()"
    assert repr(EarlyStopping(patience=3, monitor="valid_loss")) == "EarlyStopping(patience=3)"
    assert repr(WritesLosses(tag="x")) == "WritesLosses(tag='x')"


def _stop_after(patience):
    """An MXNet-style closure factory: per-fit state through ``state``."""

    def early_stop(ctx, state):  # as if the loss never improved: counts the epochs
        state["wait"] = state.get("wait", 0) + 1
        return state["wait"] < patience

    return early_stop


def test_lambda_functions_with_state_start_afresh_each_fit_and_resume(regression_data, tmp_path):
    X, y = regression_data
    est = NeuralRegressor(max_epochs=10, callbacks=[LambdaCallback(on_epoch_end=_stop_after(3))])
    assert est.fit(X, y).n_iter_ == 3
    assert est.fit(X, y).n_iter_ == 3  # a second fit does not inherit the first one's count
    assert est.callbacks_["lambda_callback"].state_ == {"wait": 3}
    warm = NeuralRegressor(
        max_epochs=2, warm_start=True, callbacks=[LambdaCallback(on_epoch_end=_stop_after(3))]
    )
    warm.fit(X, y)
    assert warm.fit(X, y).n_iter_ == 3  # a continuation keeps the state: stops at the 3rd epoch
    checkpointed = NeuralRegressor(
        max_epochs=5,
        random_state=0,
        callbacks=[LambdaCallback(on_epoch_end=_stop_after(9)), Checkpoint(tmp_path, every=2)],
    )
    path = checkpointed.fit(X, y).callbacks_.checkpoint.saved_paths_[0]
    restored = NeuralRegressor(
        max_epochs=5, callbacks=[LambdaCallback(on_epoch_end=_stop_after(9))]
    ).load_checkpoint(path)
    assert restored.callbacks_["lambda_callback"].state_ == {"wait": 2}


def test_lambda_callbacks_with_lambdas_and_closures_pickle(regression_data):
    import joblib
    from sklearn.model_selection import GridSearchCV

    X, y = regression_data
    collected = []
    est = NeuralRegressor(
        max_epochs=2,
        random_state=0,
        callbacks=[
            LambdaCallback(on_epoch_end=lambda ctx: collected.append(ctx.epoch)),
            LambdaCallback(name="stopper", on_epoch_end=_stop_after(5)),
        ],
    ).fit(X, y)
    assert collected == [1, 2]  # closures are the user's: shared, not copied
    for copy in (pickle.loads(pickle.dumps(est)), joblib.load(_dump(joblib, est))):
        np.testing.assert_array_equal(copy.predict(X), est.predict(X))
        assert copy.fit(X, y).callbacks_["stopper"].state_ == {"wait": 2}
    search = GridSearchCV(est, {"lr": [1e-3, 1e-2]}, cv=2, n_jobs=2).fit(X, y)
    assert search.best_estimator_.callbacks_["stopper"].state_ == {"wait": 2}


def _dump(joblib, obj):
    import io

    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    buffer.seek(0)
    return buffer


# -- declared parameter constraints -------------------------------------------
class Smoothing(Callback):
    """A third-party callback declaring what its parameters may be."""

    parameter_constraints = {
        "alpha": (lambda v: 0 < v <= 1, "a number in (0, 1]"),
        "key": (lambda v: isinstance(v, str), "a metric name"),
    }

    def __init__(self, alpha=0.5, key="train_loss"):
        self.alpha = alpha
        self.key = key

    def on_epoch_end(self, ctx):
        old = getattr(self, "smoothed_", ctx.metrics[self.key])
        self.smoothed_ = self.alpha * ctx.metrics[self.key] + (1 - self.alpha) * old


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"alpha": 0}, r"The 'alpha' parameter of Smoothing must be a number in \(0, 1\]; got 0\."),
        # A check that cannot compare the value fails it, with the same message.
        ({"alpha": "big"}, r"'alpha' parameter of Smoothing must be .*; got 'big'\."),
        ({"key": 3}, r"The 'key' parameter of Smoothing must be a metric name; got 3\."),
    ],
)
def test_declared_constraints_are_checked_before_any_setup(regression_data, params, message):
    X, y = regression_data
    setups = []
    est = NeuralRegressor(
        max_epochs=1,
        callbacks=[LambdaCallback(setup=setups.append), Smoothing(**params)],
    )
    with pytest.raises(ValueError, match=message) as info:
        est.fit(X, y)
    assert isinstance(info.value, TypeError)  # as the estimator's own (scikit-learn's)
    assert "raised by callback 'smoothing' before training started" in info.value.__notes__
    assert setups == [] and not hasattr(est, "n_iter_")
    # The same check for a routed parameter; a valid value fits.
    with pytest.raises(ValueError, match=message):
        NeuralRegressor(
            max_epochs=1,
            callbacks=[Smoothing()],
            **{f"cb__smoothing__{k}": v for k, v in params.items()},
        ).fit(X, y)
    assert (
        NeuralRegressor(max_epochs=2, callbacks=[Smoothing()])
        .fit(X, y)
        .callbacks_["smoothing"]
        .smoothed_
        > 0
    )


def test_built_in_constraints_are_checked_before_any_setup(regression_data):
    X, y = regression_data
    setups = []
    est = NeuralRegressor(
        max_epochs=1, callbacks=[LambdaCallback(setup=setups.append), EarlyStopping(patience=-1)]
    )
    with pytest.raises(ValueError, match=r"'patience' parameter of EarlyStopping .*; got -1\."):
        est.fit(X, y)
    assert setups == []


def test_a_subclass_extends_its_parents_constraints(regression_data):
    class Clipped(Smoothing):
        parameter_constraints = {
            **Smoothing.parameter_constraints,
            "limit": (lambda v: v > 0, "a number > 0"),
        }

        def __init__(self, alpha=0.5, key="train_loss", limit=1.0):
            super().__init__(alpha, key)
            self.limit = limit

    X, y = regression_data
    for params, bad in [({"alpha": 2}, "alpha"), ({"limit": -1}, "limit")]:
        with pytest.raises(ValueError, match=f"'{bad}' parameter of Clipped"):
            NeuralRegressor(max_epochs=1, callbacks=[Clipped(**params)]).fit(X, y)


def test_require_in_setup_still_raises_in_the_same_format(regression_data):
    class NeedsValidation(Callback):
        def __init__(self, key="valid_loss"):
            self.key = key

        def setup(self, plan):
            self._require("key", self.key in plan.metrics, f"one of {sorted(plan.metrics)}")

    X, y = regression_data
    est = NeuralRegressor(max_epochs=1, validation_fraction=None, callbacks=[NeedsValidation()])
    with pytest.raises(ValueError, match=r"The 'key' parameter of NeedsValidation must be one of "):
        est.fit(X, y)
