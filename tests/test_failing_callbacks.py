"""A campaign: a callback failing in every fit hook with every kind of
exception, in a new fit and in a warm start of a fitted estimator. The
estimator stays as it was, no file of the kept model changes (its CSV log,
checkpoints, TensorBoard events), no thread or temporary file is left."""

import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

from skcallback import Callback, NeuralRegressor
from skcallback.callbacks import HOOKS, PREDICT_HOOKS, Checkpoint, CSVLogger, TensorBoardLogger

FIT_HOOKS = [hook for hook in HOOKS if hook not in PREDICT_HOOKS]
KINDS = {kind.__name__: kind for kind in (ValueError, RuntimeError, KeyboardInterrupt, SystemExit)}


class Fail(Callback):
    """Raises ``kind`` in ``hook``."""

    def __init__(self, hook="on_fit_begin", kind="ValueError"):
        self.hook = hook
        self.kind = kind

    def _raise(self):
        raise KINDS[self.kind]("injected")


for _hook in FIT_HOOKS:
    setattr(
        Fail,
        _hook,
        lambda self, ctx, hook=_hook: self._raise() if self.hook == hook else None,
    )


def _files(folder: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}


@pytest.mark.slow
@pytest.mark.parametrize("warm", [False, True])
def test_a_failing_callback_changes_nothing_kept(warm, tmp_path):
    pytest.importorskip("tensorboard")
    warnings.simplefilter("ignore")
    X = np.random.RandomState(0).normal(size=(80, 4)).astype(np.float32)
    y = X.sum(1)
    runs = raised = 0
    for hook in FIT_HOOKS:
        for kind in KINDS:
            folder = tmp_path / f"{hook}-{kind}"
            kept = [
                CSVLogger(folder / "log.csv"),
                Checkpoint(dirname=folder / "checkpoints"),
                TensorBoardLogger(log_dir=folder / "runs"),
            ]
            est = NeuralRegressor(max_epochs=2, warm_start=warm, callbacks=kept, random_state=0)
            est.fit(X, y)
            predictions, history = est.predict(X), [dict(row) for row in est.history_]
            files, threads = _files(folder), threading.active_count()
            est.set_params(callbacks=[*kept, Fail(hook, kind)])
            runs += 1
            try:
                est.fit(X, y)
            except BaseException as exc:  # KeyboardInterrupt and SystemExit too
                assert isinstance(exc, KINDS[kind]), (hook, kind, exc)
                raised += 1
            else:
                assert hook == "on_exception", (hook, kind)  # fires only on a failure
                continue
            where = (hook, kind)
            np.testing.assert_array_equal(est.predict(X), predictions, err_msg=str(where))
            assert [dict(row) for row in est.history_] == history, where
            after = _files(folder)
            assert [path for path in files if after.get(path) != files[path]] == [], where
            assert not [path for path in after if path.suffix == ".tmp"], where
            assert threading.active_count() <= threads, where
    assert runs == len(FIT_HOOKS) * len(KINDS) and raised == runs - len(KINDS)
