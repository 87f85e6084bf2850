"""Scripts ported from skorch: its parameter names are refused with ours,
and a module ending in a softmax that meets a loss applying its own is
warned about before training."""

import re
import warnings

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV
from torch import nn

from skcallback import NeuralClassifier, NeuralRegressor
from skcallback.callbacks import EarlyStopping, EpochScoring, LambdaCallback

# (skorch's parameters, what the error must name here)
SKORCH_NAMES = [
    ({"iterator_train__shuffle": True}, r"already shuffled, anew each epoch.*random_state"),
    ({"iterator_train__shuffle": np.True_}, r"already shuffled"),
    ({"iterator_train__shuffle": False}, r"none: training batches are always shuffled"),
    ({"iterator_valid__shuffle": True}, r"none: validation and prediction batches keep"),
    ({"iterator_train__batch_size": 32}, r"iterator_train__batch_size=32: batch_size \("),
    ({"iterator_valid__batch_size": 512}, r"iterator_valid__batch_size=512: batch_size \("),
    ({"iterator_train__num_workers": 2}, r"iterator_train__num_workers=2: dataloader__num_workers"),
    ({"iterator_valid__pin_memory": True}, r"dataloader__pin_memory"),
    ({"iterator_train__drop_last": True}, r"none: each epoch trains on every row once"),
    ({"iterator_train": torch.utils.data.DataLoader}, r"dataloader__<param>"),
    ({"train_split": None}, r"train_split=None is validation_fraction=None"),
    ({"dataset": torch.utils.data.TensorDataset}, r"a torch Dataset of \(x, y\) items as X"),
    ({"predict_nonlinearity": "auto"}, r"predict_proba applies the softmax"),
    ({"callbacks__EarlyStopping__patience": 3}, r"=3: cb__early_stopping__patience$"),
    ({"callbacks__EarlyStopping": None}, r"=None: cb__early_stopping$"),
    ({"callbacks__print_log__keys_ignored": ["dur"]}, r"cb__print_log__keys_ignored \(verbose"),
    ({"callbacks__valid_acc": None}, r"add EpochScoring\('accuracy'\)"),
    ({"callbacks__epoch_timer": None}, r"'dur'"),
]


@pytest.mark.parametrize(("params", "names"), SKORCH_NAMES, ids=lambda p: str(p)[:40])
def test_skorch_names_are_refused_with_ours_at_fit_and_in_set_params(
    classification_data, params, names
):
    X, y = classification_data
    started = []
    callbacks = [EarlyStopping(), LambdaCallback(on_fit_begin=lambda ctx: started.append(1))]
    est = NeuralClassifier(max_epochs=1, callbacks=callbacks)
    with pytest.raises(ValueError, match="skorch") as in_set_params:
        est.set_params(**params)
    assert est.get_params().keys().isdisjoint(params)  # refused, not stored
    with pytest.raises(ValueError, match="skorch") as at_fit:
        NeuralClassifier(max_epochs=1, callbacks=callbacks, **params).fit(X, y)
    assert not started
    assert str(at_fit.value) == str(in_set_params.value)
    assert re.search(names, str(at_fit.value), flags=re.MULTILINE), str(at_fit.value)


def test_a_grid_with_skorch_names_fails_naming_ours(classification_data):
    X, y = classification_data
    grid = {"callbacks__EarlyStopping__patience": [2, 3], "iterator_train__shuffle": [True]}
    search = GridSearchCV(NeuralClassifier(max_epochs=1, callbacks=[EarlyStopping()]), grid, cv=2)
    with pytest.raises(ValueError) as caught:
        search.fit(X, y)
    message = str(caught.value)
    assert "cb__early_stopping__patience" in message
    assert "already shuffled" in message


@pytest.mark.parametrize(
    ("callbacks", "ours"),
    [
        ([EarlyStopping()], "cb__early_stopping__patience"),
        ([("stop", EarlyStopping())], "cb__stop__patience"),  # a (name, callback) pair
        ([EarlyStopping(monitor="valid_loss")], "cb__early_stopping__patience"),
    ],
)
def test_the_callback_parameter_named_is_the_one_this_estimator_takes(
    classification_data, callbacks, ours
):
    X, y = classification_data
    est = NeuralClassifier(max_epochs=2, callbacks=callbacks)
    with pytest.raises(ValueError, match=f"callbacks__EarlyStopping__patience=1: {ours}$"):
        est.set_params(callbacks__EarlyStopping__patience=1)
    est.set_params(**{ours: 1}).fit(X, y)
    assert est.get_params()[ours] == 1


def test_an_epoch_scoring_is_named_by_its_history_key(classification_data):
    X, y = classification_data
    est = NeuralClassifier(max_epochs=1, callbacks=[EpochScoring("accuracy")])
    with pytest.raises(ValueError, match=r"cb__valid_accuracy__lower_is_better$"):
        est.set_params(callbacks__EpochScoring__lower_is_better=False)
    est.set_params(cb__valid_accuracy__lower_is_better=False).fit(X, y)


def test_a_callback_not_in_the_list_is_named_with_the_callbacks_there(classification_data):
    X, y = classification_data
    with pytest.raises(ValueError, match=r"cb__early_stopping__patience \(once.*\['history'\]"):
        NeuralClassifier(callbacks__EarlyStopping__patience=3).fit(X, y)


def test_other_unknown_names_are_refused_as_before(regression_data):
    X, y = regression_data
    with pytest.raises(TypeError, match=r"unexpected parameter\(s\) \['lerning_rate'\].*cb__"):
        NeuralRegressor(lerning_rate=0.1).fit(X, y)
    with pytest.raises(ValueError, match="Invalid parameter 'lerning_rate'") as caught:
        NeuralRegressor().set_params(lerning_rate=0.1)
    assert "skorch" not in str(caught.value)


# -- a softmax before a loss that applies its own ---------------------------


class Net(nn.Module):
    """Logits for ``n_outputs`` classes, then ``last`` (a layer or None)."""

    def __init__(self, n_features_in, n_outputs, last=None):
        super().__init__()
        self.linear = nn.Linear(n_features_in, n_outputs)
        self.last = last

    def forward(self, X):
        out = self.linear(X)
        return out if self.last is None else self.last(out)


class NegativeLogits(nn.Module):
    """Binary logits that are all negative, yet no log-probabilities."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, X):
        return -nn.functional.softplus(self.scale * X)


WARNS = [
    (nn.Softmax(dim=1), None, r"ends in a softmax, and CrossEntropyLoss applies"),
    (nn.Softmax(dim=1), nn.CrossEntropyLoss, r"Remove the final nn.Softmax"),
    (nn.LogSoftmax(dim=1), None, r"log-softmax.*pass criterion=nn.NLLLoss"),
    (nn.Softmax(dim=1), nn.NLLLoss, r"NLLLoss expects log-probabilities.*nn.LogSoftmax"),
]
SILENT = [
    (None, None),
    (None, nn.CrossEntropyLoss),
    (nn.LogSoftmax(dim=1), nn.NLLLoss),
    (nn.Softplus(), None),  # non-negative, but rows do not sum to 1
    (nn.Sequential(nn.Softmax(dim=1), nn.Linear(3, 3)), None),  # a softmax inside
    (NegativeLogits(), None),
]


@pytest.mark.parametrize(("last", "criterion", "message"), WARNS)
def test_a_softmax_before_a_loss_with_its_own_warns_before_the_first_batch(
    classification_data, last, criterion, message
):
    X, y = classification_data
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        seen_at_first_batch = []
        record = LambdaCallback(
            on_train_batch_begin=lambda ctx: seen_at_first_batch.append(len(caught))
        )
        NeuralClassifier(
            module=Net,
            module__last=last,
            criterion=criterion,
            max_epochs=3,
            batch_size=50,
            callbacks=[record],
        ).fit(X, y)
    ours = [w for w in caught if issubclass(w.category, UserWarning) and "module" in str(w.message)]
    assert len(ours) == 1, [str(w.message) for w in caught]  # once per fit, not per batch
    assert re.search(message, str(ours[0].message))
    assert ours[0].filename == __file__  # points at the user's fit
    assert caught.index(ours[0]) < seen_at_first_batch[0]  # before training started


@pytest.mark.parametrize(("last", "criterion"), SILENT)
def test_logits_and_matching_losses_do_not_warn(classification_data, last, criterion):
    X, y = classification_data
    if isinstance(last, NegativeLogits):
        X, y = np.abs(X[:, :2]), (X[:, 0] > 0).astype(int)  # binary: two columns
        module, params = last, {}
    else:
        module, params = Net, {"module__last": last}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        NeuralClassifier(module=module, criterion=criterion, max_epochs=1, **params).fit(X, y)


def test_the_built_in_mlp_does_not_warn(classification_data):
    X, y = classification_data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        NeuralClassifier(max_epochs=1).fit(X, y)
        NeuralClassifier(max_epochs=1, hidden_layer_sizes=()).fit(X, y)
