"""The training loop: hook order, stop/skip semantics, failures, Ctrl-C."""

import contextlib
import os
import signal
from signal import SIGINT

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from skcallback import Callback, Context, NeuralRegressor, _loop
from skcallback._dispatch import HookTable
from skcallback.callbacks import HOOKS, LambdaCallback


class Recorder(Callback):
    def __init__(self):
        pass


for _hook in HOOKS:

    def _record(self, ctx, _hook=_hook):
        self.calls_ = [*getattr(self, "calls_", []), (_hook, ctx.phase)]

    setattr(Recorder, _hook, _record)


def _expected(n_epochs, n_train_batches, n_valid_batches):
    calls = [("on_fit_begin", None)]
    for epoch in range(n_epochs):
        phase = None if epoch == 0 else "valid" if n_valid_batches else "train"
        calls.append(("on_epoch_begin", phase))
        calls.append(("on_train_begin", "train"))
        for _ in range(n_train_batches):
            calls += [
                ("on_train_batch_begin", "train"),
                ("on_after_forward", "train"),
                ("on_after_loss", "train"),
                ("on_before_backward", "train"),
                ("on_after_backward", "train"),
                ("on_before_step", "train"),
                ("on_after_step", "train"),
                ("on_train_batch_end", "train"),
            ]
        calls.append(("on_train_end", "train"))
        if n_valid_batches:
            calls.append(("on_valid_begin", "valid"))
            for _ in range(n_valid_batches):
                calls += [
                    ("on_valid_batch_begin", "valid"),
                    ("on_after_forward", "valid"),
                    ("on_after_loss", "valid"),
                    ("on_valid_batch_end", "valid"),
                ]
            calls.append(("on_valid_end", "valid"))
        calls.append(("on_epoch_end", "valid" if n_valid_batches else "train"))
    calls.append(("on_fit_end", "valid" if n_valid_batches else "train"))
    return calls


@pytest.mark.parametrize("validation_fraction", [0.2, None])
def test_every_hook_fires_in_the_documented_order(regression_data, validation_fraction):
    X, y = regression_data  # 120 rows
    est = NeuralRegressor(
        callbacks=[Recorder()],
        max_epochs=2,
        batch_size=50,
        validation_fraction=validation_fraction,
        random_state=0,
    ).fit(X, y)
    n_train = 96 if validation_fraction else 120
    expected = _expected(2, -(-n_train // 50), 1 if validation_fraction else 0)
    assert est.callbacks_["recorder"].calls_ == expected


def test_context_attributes_during_a_batch(regression_data):
    X, y = regression_data
    seen = {}

    def look(ctx):
        seen.update(
            epoch=ctx.epoch,
            batch=ctx.batch,
            n_batches=ctx.n_batches,
            step=ctx.step,
            max_epochs=ctx.max_epochs,
            X_shape=tuple(ctx.X_batch.shape),
            grad=ctx.module.layers[0].weight.grad is not None,
            loss=ctx.loss.item(),
            history_len=len(ctx.history),
            names=list(ctx.callbacks),
        )

    est = NeuralRegressor(
        callbacks=[LambdaCallback(on_after_backward=look)],
        max_epochs=3,
        batch_size=32,
        validation_fraction=None,
        random_state=0,
    ).fit(X, y)
    assert seen["epoch"] == 3 and seen["max_epochs"] == 3
    assert seen["batch"] == seen["n_batches"] == 4
    assert seen["step"] == 11  # the step of the last batch is counted after on_after_step
    assert seen["X_shape"] == (120 - 3 * 32, 4)
    assert seen["grad"] and np.isfinite(seen["loss"])
    assert seen["history_len"] == 3
    assert seen["names"] == ["history", "lambda_callback"]
    assert est.n_steps_ == 12


def test_only_overriding_callbacks_are_dispatched():
    class OnlyEpochEnd(Callback):
        def on_epoch_end(self, ctx):
            pass

    table = HookTable([("a", OnlyEpochEnd()), ("b", LambdaCallback(on_fit_begin=print))])
    assert [name for name, _, _ in table.on_epoch_end] == ["a"]
    assert [name for name, _, _ in table.on_fit_begin] == ["b"]
    assert table.on_train_batch_end == ()


def test_returning_false_stops_after_the_epoch(regression_data):
    X, y = regression_data
    est = NeuralRegressor(
        callbacks=[LambdaCallback(on_epoch_end=lambda ctx: ctx.epoch < 3)],
        max_epochs=10,
        random_state=0,
    ).fit(X, y)
    assert est.n_iter_ == 3
    assert len(est.history_) == 3


def test_stop_during_a_batch_ends_training_but_validation_and_epoch_end_run(regression_data):
    X, y = regression_data
    events = []

    def stop_at_second_batch(ctx):
        if ctx.batch == 2:
            ctx.request_stop("enough")

    est = NeuralRegressor(
        callbacks=[
            LambdaCallback(
                name="stopper",
                on_train_batch_end=stop_at_second_batch,
                on_valid_end=lambda ctx: events.append("valid"),
                on_epoch_end=lambda ctx: events.append("epoch_end"),
                on_fit_end=lambda ctx: events.append(("fit_end", ctx.stop_reason)),
            ),
        ],
        batch_size=10,
        max_epochs=5,
        random_state=0,
    ).fit(X, y)
    assert est.n_iter_ == 1
    assert est.n_steps_ == 2
    assert events == ["valid", "epoch_end", ("fit_end", "enough")]
    assert "valid_loss" in est.history_[0]


def test_false_from_a_batch_hook_names_the_callback_in_the_reason(regression_data):
    X, y = regression_data
    reasons = []
    NeuralRegressor(
        callbacks=[
            ("halt", LambdaCallback(on_train_batch_end=lambda ctx: False)),
            ("spy", LambdaCallback(on_fit_end=lambda ctx: reasons.append(ctx.stop_reason))),
        ],
        max_epochs=3,
        random_state=0,
    ).fit(X, y)
    assert reasons == ["halt.on_train_batch_end returned False"]


def test_skip_batch_skips_backward_and_step(regression_data):
    X, y = regression_data
    est = NeuralRegressor(
        callbacks=[LambdaCallback(on_after_loss=lambda ctx: ctx.skip_batch())],
        max_epochs=2,
        random_state=0,
    )
    untrained = NeuralRegressor(
        max_epochs=1,
        random_state=0,
        callbacks=[LambdaCallback(on_fit_begin=lambda ctx: ctx.request_stop())],
    ).fit(X, y)
    est.fit(X, y)
    assert est.n_steps_ == 0
    np.testing.assert_array_equal(est.predict(X), untrained.predict(X))
    assert np.isnan(est.history_[0]["train_loss"])


def test_the_loss_left_by_on_after_loss_is_backpropagated(regression_data):
    X, y = regression_data

    def huge_weight_penalty(ctx):
        if ctx.phase == "train":
            weights = torch.cat([p.flatten() for p in ctx.module.parameters()])
            ctx.loss = ctx.loss + 10.0 * weights.pow(2).sum()

    plain = NeuralRegressor(max_epochs=20, lr=1e-2, random_state=0).fit(X, y)
    penalised = NeuralRegressor(
        max_epochs=20,
        lr=1e-2,
        random_state=0,
        callbacks=[LambdaCallback(on_after_loss=huge_weight_penalty)],
    ).fit(X, y)

    def norm(est):
        return float(sum(p.detach().pow(2).sum() for p in est.module_.parameters()))

    assert norm(penalised) < 0.5 * norm(plain)


class Boom(Callback):
    def on_train_batch_end(self, ctx):
        if ctx.step == 3:
            raise RuntimeError("boom")


def test_a_failing_callback_runs_on_exception_and_on_fit_end_and_is_named(regression_data):
    X, y = regression_data
    seen = []
    watcher = LambdaCallback(
        on_exception=lambda ctx: seen.append(("exception", type(ctx.exception).__name__)),
        on_fit_end=lambda ctx: seen.append(("fit_end", ctx.exception is not None)),
    )
    est = NeuralRegressor(callbacks=[Boom(), watcher], batch_size=10, random_state=0)
    with pytest.raises(RuntimeError, match="boom") as info:
        est.fit(X, y)
    assert "raised by callback 'boom' in on_train_batch_end" in info.value.__notes__
    assert seen == [("exception", "RuntimeError"), ("fit_end", True)]
    with pytest.raises(NotFittedError):  # a failed fit leaves the estimator as it was
        est.predict(X)


def test_an_error_in_a_cleanup_hook_does_not_hide_the_original(regression_data):
    X, y = regression_data

    def broken_cleanup(ctx):
        raise ValueError("cleanup broke")

    est = NeuralRegressor(
        callbacks=[Boom(), LambdaCallback(on_fit_end=broken_cleanup)], batch_size=10
    )
    with pytest.raises(RuntimeError, match="boom") as info:
        est.fit(X, y)
    assert any("cleanup broke" in note for note in info.value.__notes__)


def test_ctrl_c_stops_after_the_current_batch_and_leaves_a_fitted_estimator(regression_data):
    X, y = regression_data

    def press_ctrl_c(ctx):
        if ctx.step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    est = NeuralRegressor(
        callbacks=[LambdaCallback(on_after_step=press_ctrl_c)],
        batch_size=10,
        max_epochs=50,
        random_state=0,
    )
    with pytest.warns(RuntimeWarning, match="interrupted") as record:
        est.fit(X, y)
    assert record[0].filename == __file__  # the user's line, not the library's
    assert est.n_steps_ == 2
    assert est.n_iter_ == 1
    assert "valid_loss" in est.history_[0]
    assert est.predict(X).shape == (120,)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_the_ctrl_c_warning_points_at_the_users_line_through_a_search(
    regression_data, fresh_interrupts
):
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline

    X, y = regression_data
    pressed = []

    def press_once(ctx):  # a second press within seconds would abort the search
        if ctx.step == 2 and not pressed:
            pressed.append(True)
            os.kill(os.getpid(), signal.SIGINT)

    once = LambdaCallback(name="ctrl_c", on_after_step=press_once)
    est = NeuralRegressor(callbacks=[once], batch_size=10, max_epochs=2)
    search = GridSearchCV(make_pipeline(est), {"neuralregressor__lr": [1e-3]}, cv=2, refit=False)
    with pytest.warns(RuntimeWarning, match="interrupted") as record:
        search.fit(X, y)
    assert {w.filename for w in record if "interrupted" in str(w.message)} == {__file__}


def test_a_keyboard_interrupt_raised_in_a_hook_aborts_after_clean_up(regression_data):
    X, y = regression_data
    seen = []

    def interrupt(ctx):
        if ctx.epoch == 2:
            raise KeyboardInterrupt

    est = NeuralRegressor(
        callbacks=[
            LambdaCallback(on_epoch_begin=interrupt),
            LambdaCallback(
                name="watch",
                on_exception=lambda ctx: seen.append("exception"),
                on_fit_end=lambda ctx: seen.append("fit_end"),
            ),
        ],
        max_epochs=10,
        random_state=0,
    )
    with pytest.raises(KeyboardInterrupt):
        est.fit(X, y)
    assert seen == ["exception", "fit_end"]
    with pytest.raises(NotFittedError):
        est.predict(X)


@pytest.fixture
def fresh_interrupts(monkeypatch):
    """Forget Ctrl-C presses of earlier tests (they open an abort window)."""
    monkeypatch.setattr(_loop, "_last_interrupt", [-float("inf")])


def press_ctrl_c_at(steps):
    def press(ctx):
        if ctx.step in steps:
            os.kill(os.getpid(), signal.SIGINT)

    return LambdaCallback(name="ctrl_c", on_after_step=press)


def test_a_second_ctrl_c_aborts_and_keeps_the_previous_model(regression_data, fresh_interrupts):
    X, y = regression_data
    est = NeuralRegressor(max_epochs=1, random_state=0).fit(X, y)
    before = est.predict(X)
    # The first press ends training after its batch; the second comes while
    # the epoch finishes.
    again = LambdaCallback(name="again", on_valid_end=lambda ctx: os.kill(os.getpid(), SIGINT))
    est.set_params(callbacks=[press_ctrl_c_at({3}), again], batch_size=10, max_epochs=50)
    with pytest.raises(KeyboardInterrupt):
        est.fit(X, y)
    np.testing.assert_array_equal(est.predict(X), before)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_right_after_a_stopped_fit_aborts_a_grid_search(regression_data, fresh_interrupts):
    X, y = regression_data
    est = NeuralRegressor(callbacks=[press_ctrl_c_at({2})], batch_size=10, max_epochs=50)
    with pytest.warns(RuntimeWarning, match="Press Ctrl-C twice"):
        est.fit(X, y)  # the first press stops this fit
    assert est.stop_reason_ == "KeyboardInterrupt"
    with pytest.raises(KeyboardInterrupt):  # the next fit's press, moments later, aborts
        est.fit(X, y)


def test_every_on_fit_end_runs_and_their_errors_are_raised_together(regression_data):
    X, y = regression_data
    seen = []

    def fail(name):
        def hook(ctx):
            seen.append(name)
            raise RuntimeError(name)

        return hook

    est = NeuralRegressor(
        max_epochs=1,
        callbacks=[
            LambdaCallback(name="a", on_fit_end=fail("a")),
            LambdaCallback(name="b", on_fit_end=fail("b")),
            LambdaCallback(
                name="c",
                on_fit_end=lambda ctx: seen.append("c"),
                on_exception=lambda ctx: seen.append(("exception", type(ctx.exception).__name__)),
            ),
        ],
    )
    with pytest.raises(ExceptionGroup) as info:
        est.fit(X, y)
    assert [str(e) for e in info.value.exceptions] == ["a", "b"]
    assert seen == ["a", "b", "c", ("exception", "ExceptionGroup")]
    with pytest.raises(NotFittedError):
        est.predict(X)


def open_files():
    """The paths this process holds open (Linux's /proc)."""
    fds = "/proc/self/fd"
    paths = set()
    for fd in os.listdir(fds):
        with contextlib.suppress(OSError):  # the listing's own descriptor, closed by now
            paths.add(os.readlink(os.path.join(fds, fd)))
    return paths


def raise_in_on_fit_end(error):
    def hook(ctx):
        raise error

    return LambdaCallback(name="raiser", on_fit_end=hook)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
@pytest.mark.parametrize("error", [KeyboardInterrupt, SystemExit, RuntimeError])
@pytest.mark.parametrize("training_fails", [False, True])
def test_every_cleanup_hook_runs_whatever_another_raises(
    tmp_path, regression_data, error, training_fails
):
    from skcallback.callbacks import CSVLogger

    X, y = regression_data
    seen = []

    def fail_training(ctx):
        if training_fails:
            raise ValueError("training failed")

    callbacks = [
        ("first_csv", CSVLogger(tmp_path / "first.csv")),
        LambdaCallback(name="fails", on_epoch_end=fail_training),
        raise_in_on_fit_end(error("cleanup raised")),
        ("second_csv", CSVLogger(tmp_path / "second.csv")),
        LambdaCallback(name="watch", on_exception=lambda ctx: seen.append(ctx.exception)),
    ]
    est = NeuralRegressor(max_epochs=1, callbacks=callbacks)
    # A training error stays the one raised; else the cleanup hook's own.
    with pytest.raises(ValueError if training_fails else error) as info:
        est.fit(X, y)
    assert not {str(tmp_path / "first.csv"), str(tmp_path / "second.csv")} & open_files()
    assert seen == [info.value]
    notes = getattr(info.value, "__notes__", [])
    if training_fails:
        expected = f"callback 'raiser' raised in on_fit_end: {error.__name__}: cleanup raised"
        assert f"while handling it, {expected}" in notes
    else:
        assert "raised by callback 'raiser' in on_fit_end" in notes
    with pytest.raises(NotFittedError):  # a cleanup hook's error fails the fit
        est.predict(X)


def test_an_interrupt_among_several_cleanup_errors_is_the_one_raised(regression_data):
    X, y = regression_data
    callbacks = [
        ("a", raise_in_on_fit_end(RuntimeError("a"))),
        ("b", raise_in_on_fit_end(KeyboardInterrupt("b"))),
        ("c", raise_in_on_fit_end(RuntimeError("c"))),
    ]
    with pytest.raises(KeyboardInterrupt) as info:
        NeuralRegressor(max_epochs=1, callbacks=callbacks).fit(X, y)
    notes = info.value.__notes__
    assert "callback 'a' also raised in on_fit_end: RuntimeError: a" in notes
    assert "callback 'c' also raised in on_fit_end: RuntimeError: c" in notes


def test_a_tensorboard_writer_is_closed_when_another_cleanup_hook_interrupts(
    tmp_path, regression_data
):
    import threading

    pytest.importorskip("tensorboard")
    from skcallback.callbacks import TensorBoardLogger

    X, y = regression_data
    est = NeuralRegressor(
        max_epochs=1,
        callbacks=[raise_in_on_fit_end(KeyboardInterrupt()), TensorBoardLogger(tmp_path)],
    )
    threads = threading.active_count()
    for _ in range(3):
        with pytest.raises(KeyboardInterrupt):
            est.fit(X, y)
    assert threading.active_count() == threads


@pytest.mark.parametrize("value", [False, np.False_, torch.tensor(False)])
def test_false_values_request_a_stop(regression_data, value):
    X, y = regression_data
    est = NeuralRegressor(
        max_epochs=5, callbacks=[LambdaCallback(on_epoch_end=lambda ctx: value)]
    ).fit(X, y)
    assert est.n_iter_ == 1 and est.stop_reason_.endswith("returned False")


@pytest.mark.parametrize(
    "value", [None, 0, True, "", [], np.True_, torch.tensor(True), torch.tensor([False])]
)
def test_other_values_do_not_stop(regression_data, value):
    X, y = regression_data
    est = NeuralRegressor(
        max_epochs=2, callbacks=[LambdaCallback(on_epoch_end=lambda ctx: value)]
    ).fit(X, y)
    assert est.n_iter_ == 2 and est.stop_reason_ is None


def test_skip_batch_at_batch_begin_skips_the_whole_batch(regression_data):
    X, y = regression_data
    seen = []
    est = NeuralRegressor(
        max_epochs=1,
        batch_size=40,
        callbacks=[
            LambdaCallback(
                on_train_batch_begin=lambda ctx: ctx.skip_batch() if ctx.batch == 2 else None,
                on_after_forward=lambda ctx: seen.append(ctx.batch) if ctx.phase == "train" else 0,
                on_train_batch_end=lambda ctx: seen.append(("end", ctx.y_pred is None)),
            )
        ],
    ).fit(X, y)
    assert seen == [1, ("end", False), ("end", True), 3, ("end", False)]
    assert est.n_steps_ == 2


# -- the Context and each hook's moment (API.md) -------------------------------
def test_every_hook_gets_the_one_context_of_the_fit(regression_data):
    X, y = regression_data
    seen = []
    spy = LambdaCallback(**{hook: seen.append for hook in HOOKS if hook != "on_exception"})
    est = NeuralRegressor(callbacks=[spy], max_epochs=2, batch_size=50)
    est.fit(X, y)
    assert len(seen) > 20 and isinstance(seen[0], Context)
    assert all(ctx is seen[0] for ctx in seen)
    first = seen[0]
    seen.clear()
    est.fit(X, y)
    assert seen[0] is not first  # one object per fit


def test_what_each_hook_of_a_training_batch_sees(regression_data):
    X, y = regression_data
    log = {}

    def params(ctx):
        return [p.detach().clone() for p in ctx.module.parameters()]

    def after_forward(ctx):
        if ctx.phase == "train" and ctx.step == 0:
            log["y_pred"] = (tuple(ctx.y_pred.shape), len(ctx.X_batch), ctx.loss)

    def after_loss(ctx):
        if ctx.step == 0 or ctx.phase == "valid":
            expected = ctx.criterion(ctx.y_pred, ctx.y_batch).detach()
            log.setdefault(ctx.phase, (ctx.loss.dim(), ctx.loss.detach().item(), expected.item()))

    def before_backward(ctx):
        if ctx.step == 0:
            log["grads_before"] = [p.grad for p in ctx.module.parameters()]

    def after_backward(ctx):
        if ctx.step == 0:
            log["grads_after"] = [p.grad.clone() for p in ctx.module.parameters()]

    def before_step(ctx):
        if ctx.step == 0:
            log["before_step"] = (ctx.step, params(ctx))

    def after_step(ctx):
        if "after_step" not in log:
            log["after_step"] = (ctx.step, params(ctx))

    NeuralRegressor(
        max_epochs=1,
        batch_size=40,
        random_state=0,
        callbacks=[
            LambdaCallback(
                on_after_forward=after_forward,
                on_after_loss=after_loss,
                on_before_backward=before_backward,
                on_after_backward=after_backward,
                on_before_step=before_step,
                on_after_step=after_step,
            )
        ],
    ).fit(X, y)
    assert log["y_pred"] == ((40, 1), 40, None)  # y_pred set, the loss not yet
    for phase in ("train", "valid"):
        dim, loss, expected = log[phase]
        assert dim == 0 and loss == pytest.approx(expected)
    assert all(grad is None for grad in log["grads_before"])
    assert all(grad.abs().sum() > 0 for grad in log["grads_after"])
    (step_before, weights_before), (step_after, weights_after) = (
        log["before_step"],
        log["after_step"],
    )
    assert (step_before, step_after) == (0, 1)
    assert all(not torch.equal(a, b) for a, b in zip(weights_before, weights_after, strict=True))


def test_context_counters_phases_and_batches(regression_data):
    X, y = regression_data  # 108 training and 12 validation rows
    events = []

    def note(hook):
        return lambda ctx: events.append((hook, ctx.epoch, ctx.phase, ctx.batch, ctx.n_batches))

    hooks = ["on_epoch_begin", "on_train_batch_end", "on_valid_batch_end", "on_epoch_end"]
    est = NeuralRegressor(
        max_epochs=2, batch_size=50, callbacks=[LambdaCallback(**{h: note(h) for h in hooks})]
    ).fit(X, y)
    batches = [(e, b, n) for hook, e, phase, b, n in events if hook == "on_train_batch_end"]
    assert batches == [(1, 1, 3), (1, 2, 3), (1, 3, 3), (2, 1, 3), (2, 2, 3), (2, 3, 3)]
    valid = [(e, phase, b, n) for hook, e, phase, b, n in events if hook == "on_valid_batch_end"]
    assert valid == [(1, "valid", 1, 1), (2, "valid", 1, 1)]
    assert [e for hook, e, *_ in events if hook == "on_epoch_begin"] == [1, 2]
    assert est.n_iter_ == 2


def test_context_metrics_fill_up_during_the_epoch_and_become_the_history_row(regression_data):
    X, y = regression_data
    seen = {}

    def keep(name):
        def hook(ctx):
            assert isinstance(ctx.metrics, dict)
            seen[name] = dict(ctx.metrics)
            if name == "on_epoch_end":
                seen["row_is_metrics"] = ctx.history[-1] == ctx.metrics

        return hook

    hooks = ["on_train_end", "on_valid_end", "on_epoch_end"]
    est = NeuralRegressor(
        max_epochs=2, callbacks=[LambdaCallback(**{h: keep(h) for h in hooks})]
    ).fit(X, y)
    assert seen["on_train_end"]["epoch"] == 2 and "train_loss" in seen["on_train_end"]
    assert "valid_loss" not in seen["on_train_end"]
    assert {"train_loss", "valid_loss"} <= set(seen["on_valid_end"])
    assert seen["on_epoch_end"] == est.history_[-1] and seen["row_is_metrics"]


def test_context_names_the_estimator_device_and_torch_objects(regression_data):
    X, y = regression_data
    seen = {}

    def look(ctx):
        seen.update(
            estimator=ctx.estimator,
            lr=ctx.estimator.get_params()["lr"],
            prediction=ctx.estimator.predict(X[:3]),
            module=ctx.module,
            optimizer=ctx.optimizer,
            criterion=ctx.criterion,
            device=ctx.device,
            history=ctx.history,
            callbacks=ctx.callbacks,
        )

    est = NeuralRegressor(
        lr=0.02, device="cpu", max_epochs=1, callbacks=[LambdaCallback(on_epoch_end=look)]
    ).fit(X, y)
    assert isinstance(seen["estimator"], NeuralRegressor) and seen["lr"] == 0.02
    np.testing.assert_array_equal(seen["prediction"], est.predict(X[:3]))
    assert seen["module"] is est.module_ and seen["optimizer"] is est.optimizer_
    assert seen["criterion"] is est.criterion_
    assert seen["device"] == torch.device("cpu")
    assert seen["history"] is est.history_
    assert seen["callbacks"]["history"] is est.history_
    assert list(seen["callbacks"]) == list(est.callbacks_)


def test_stop_requested_and_stop_reason_follow_request_stop(regression_data):
    X, y = regression_data
    seen = []

    def check(ctx):
        seen.append((ctx.epoch, ctx.stop_requested, ctx.stop_reason))
        if ctx.epoch == 2:
            ctx.request_stop("plateau")

    est = NeuralRegressor(
        max_epochs=5,
        callbacks=[
            LambdaCallback(
                on_epoch_end=check,
                on_fit_end=lambda ctx: seen.append(("end", ctx.stop_requested, ctx.stop_reason)),
            )
        ],
    ).fit(X, y)
    assert seen == [(1, False, None), (2, False, None), ("end", True, "plateau")]
    assert est.stop_reason_ == "plateau"


def test_the_first_stop_reason_is_kept(regression_data):
    X, y = regression_data

    def stop_twice(ctx):
        ctx.request_stop("first")
        ctx.request_stop("second")
        return False  # a third request, by return value

    est = NeuralRegressor(
        max_epochs=3,
        callbacks=[
            LambdaCallback(name="a", on_train_batch_end=stop_twice),
            LambdaCallback(name="b", on_epoch_end=lambda ctx: ctx.request_stop("later")),
        ],
    ).fit(X, y)
    assert est.stop_reason_ == "first" and est.n_iter_ == 1


def test_request_stop_without_a_reason_still_stops_with_a_reason(regression_data):
    X, y = regression_data
    est = NeuralRegressor(
        max_epochs=5, callbacks=[LambdaCallback(on_epoch_end=lambda ctx: ctx.request_stop())]
    ).fit(X, y)
    assert est.n_iter_ == 1
    assert isinstance(est.stop_reason_, str) and est.stop_reason_  # None means "ran to the end"


def test_callbacks_share_values_through_their_own_ctx_attributes(regression_data):
    X, y = regression_data
    read = []

    def write(ctx):
        ctx.shared_scale = 10 * ctx.epoch

    est = NeuralRegressor(
        max_epochs=2,
        callbacks=[
            ("reader", LambdaCallback(on_epoch_end=lambda ctx: read.append(ctx.shared_scale))),
            ("writer", LambdaCallback(on_epoch_begin=write)),
        ],
    ).fit(X, y)
    assert read == [10, 20] and est.n_iter_ == 2


def test_on_fit_end_runs_after_a_stop_and_on_exception_only_on_failure(regression_data):
    X, y = regression_data
    seen = []
    est = NeuralRegressor(
        max_epochs=5,
        callbacks=[
            LambdaCallback(
                on_epoch_end=lambda ctx: False,
                on_fit_end=lambda ctx: seen.append(("fit_end", ctx.exception)),
                on_exception=lambda ctx: seen.append("exception"),
            )
        ],
    ).fit(X, y)
    assert seen == [("fit_end", None)] and est.n_iter_ == 1


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_phase_of_one_batch_averages_as_one_of_several(dtype):
    """A phase's loss is its batches' mean weighted by their sizes; for one
    batch, computed without tensors: the same bits, -0.0 and NaN included."""
    rng = np.random.RandomState(0)
    values = [*rng.lognormal(0, 8, size=200) * rng.choice([-1, 1], 200), -0.0, np.inf, np.nan]
    for value, size in zip(values, rng.randint(1, 10**6, size=len(values)), strict=True):
        loss = torch.tensor(value, dtype=dtype)
        stacked = torch.stack([loss.double()])
        counts = torch.tensor([int(size)], dtype=torch.float64)
        expected = float((stacked * counts).sum() / counts.sum())
        found = _loop._weighted_mean([loss], [int(size)])
        assert np.array_equal(np.float64(found), np.float64(expected), equal_nan=True)
        assert np.signbit(found) == np.signbit(expected)


class _FrozenNormNet(torch.nn.Module):
    """A module whose ``train`` keeps its batch norm in eval mode (its
    running statistics frozen), as fine-tuning code does."""

    def __init__(self, n_features_in):
        super().__init__()
        self.norm = torch.nn.BatchNorm1d(n_features_in)
        self.head = torch.nn.Sequential(torch.nn.Linear(n_features_in, 8), torch.nn.ReLU())
        self.out = torch.nn.Linear(8, 1)

    def forward(self, X):
        return self.out(self.head(self.norm(X)))

    def train(self, mode=True):
        super().train(mode)
        self.norm.eval()
        return self


@pytest.mark.parametrize("module", [None, _FrozenNormNet])
def test_every_layer_is_in_training_mode_in_training_and_eval_mode_in_validation(
    regression_data, module
):
    X, y = regression_data
    seen = []

    def record(ctx):
        seen.append((ctx.phase, {name: m.training for name, m in ctx.module.named_modules()}))

    est = NeuralRegressor(
        module=module,
        max_epochs=2,
        batch_size=64,
        dropout=0.2 if module is None else 0.0,
        callbacks=[
            LambdaCallback(on_train_batch_begin=record, on_valid_batch_begin=record),
        ],
        random_state=0,
    ).fit(X, y)

    assert {phase for phase, _ in seen} == {"train", "valid"}
    for phase, modes in seen:
        # A module's own train() is honoured: the frozen norm stays in eval mode.
        expected = {name: phase == "train" and name != "norm" for name in modes}
        assert modes == expected
    assert not any(m.training for m in est.module_.modules())  # fitted: eval mode
    running_mean = est.module_.norm.running_mean if module else None
    if module is not None:  # never updated: the norm was in eval mode throughout
        assert torch.equal(running_mean, torch.zeros_like(running_mean))
