"""skcallback.save / skcallback.load of scikit-learn pipelines and
meta-estimators around skcallback estimators; skops.io interoperation."""

import datetime
import json
import os
import pickle
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from sklearn.base import BaseEstimator, TransformerMixin, is_classifier
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.ensemble import StackingClassifier
from sklearn.exceptions import InconsistentVersionWarning
from sklearn.kernel_approximation import RBFSampler
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from torch import nn

import skcallback
from skcallback import NeuralClassifier, NeuralRegressor
from skcallback._composites import ALLOWED, resolve_allowed
from skcallback.callbacks import EarlyStopping, LambdaCallback

pd = pytest.importorskip("pandas")


class Doubler(TransformerMixin, BaseEstimator):
    """A user's transformer: outside the allow-list."""

    def fit(self, X, y=None):
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X):
        return np.asarray(X) * 2.0


def frame(n=60, seed=0):
    rng = np.random.RandomState(seed)
    X = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n),
            "income": rng.normal(3, 1, n),
            "city": rng.choice(["Lyon", "Oslo", "Porto"], n),
        }
    )
    y = np.where(X["age"] + 10 * (X["city"] == "Oslo") > 42, "yes", "no")
    return X, y


def classifier_pipeline():
    columns = ColumnTransformer(
        [
            ("numbers", StandardScaler(), ["age", "income"]),
            ("city", OneHotEncoder(handle_unknown="ignore"), ["city"]),
        ]
    )
    net = NeuralClassifier(
        hidden_layer_sizes=(8,), max_epochs=3, random_state=0, callbacks=[EarlyStopping()]
    )
    return Pipeline([("columns", columns), ("net", net)])


def document_of(path):
    with safe_open(str(path), framework="pt") as file:
        return json.loads(file.metadata()["skcallback"])


def rewrite(path, document):
    """The file with another document under a valid checksum (a crafted file)."""
    from skcallback._saving import _checksum

    tensors, text = load_file(str(path)), json.dumps(document)
    metadata = {"skcallback": text, "skcallback-checksum": _checksum(text, tensors)}
    save_file(tensors, str(path), metadata=metadata)


def test_a_column_pipeline_loads_in_a_new_process_with_identical_predictions(tmp_path):
    X, y = frame()
    pipe = classifier_pipeline().fit(X, y)
    path = skcallback.save(pipe, tmp_path / "pipe.skc")
    X.to_csv(tmp_path / "X.csv", index=False)
    script = textwrap.dedent(
        f"""
        import numpy as np, pandas as pd, skcallback
        pipe = skcallback.load({str(path)!r})
        X = pd.read_csv({str(tmp_path / "X.csv")!r})
        np.save({str(tmp_path / "labels.npy")!r}, pipe.predict(X))
        np.save({str(tmp_path / "proba.npy")!r}, pipe.predict_proba(X))
        print(type(pipe).__name__, type(pipe[-1]).__name__)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert result.stdout.split() == ["Pipeline", "NeuralClassifier"], result.stderr
    X = pd.read_csv(tmp_path / "X.csv")  # the new process's input, read the same way
    labels = np.load(tmp_path / "labels.npy", allow_pickle=False)
    assert labels.dtype.kind == "U" and set(labels) <= {"yes", "no"}
    np.testing.assert_array_equal(labels, pipe.predict(X))
    np.testing.assert_array_equal(np.load(tmp_path / "proba.npy"), pipe.predict_proba(X))


def test_the_loaded_pipeline_keeps_every_fitted_step(tmp_path):
    X, y = frame()
    pipe = classifier_pipeline().fit(X, y)
    loaded = skcallback.load(skcallback.save(pipe, tmp_path / "pipe.skc"))
    columns, net = loaded.named_steps["columns"], loaded.named_steps["net"]
    assert columns.named_transformers_["city"].categories_[0].tolist() == ["Lyon", "Oslo", "Porto"]
    np.testing.assert_array_equal(columns.feature_names_in_, ["age", "income", "city"])
    np.testing.assert_array_equal(net.classes_, ["no", "yes"])
    assert net.history_.records_ == pipe[-1].history_.records_
    unseen = X.assign(city="Bergen")  # handle_unknown="ignore" came back with the encoder
    np.testing.assert_array_equal(loaded.predict_proba(unseen), pipe.predict_proba(unseen))
    # It trains on as the original would.
    pipe.set_params(net__warm_start=True).fit(X, y)
    loaded.set_params(net__warm_start=True).fit(X, y)
    np.testing.assert_array_equal(loaded.predict_proba(X), pipe.predict_proba(X))


def test_a_target_transformed_regressor_pipeline_round_trips(tmp_path):
    X, _ = frame()
    X = X[["age", "income"]].to_numpy()
    y = np.exp(X[:, 1] / 3)
    model = TransformedTargetRegressor(
        make_pipeline(StandardScaler(), NeuralRegressor(max_epochs=3, random_state=0)),
        func=np.log1p,
        inverse_func=np.expm1,
    ).fit(X, y)
    loaded = skcallback.load(skcallback.save(model, tmp_path / "model.skc"))
    assert loaded.func is np.log1p and loaded.transformer_.inverse_func is np.expm1
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_a_stacking_classifier_stores_each_shared_estimator_once(tmp_path):
    X, y = frame()
    X = X[["age", "income"]].to_numpy()
    net = NeuralClassifier(hidden_layer_sizes=(4,), max_epochs=2, random_state=0)
    model = StackingClassifier([("net", net), ("lr", LogisticRegression())], cv=2).fit(X, y)
    path = skcallback.save(model, tmp_path / "model.skc")
    loaded = skcallback.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert loaded.named_estimators_["net"] is loaded.estimators_[0]
    # The fitted network is in the file once, not once per reference.
    alone = skcallback.save(model.estimators_[0], tmp_path / "net.skc")
    assert path.stat().st_size < 1.5 * alone.stat().st_size


def test_a_class_outside_the_allow_list_needs_trust(tmp_path):
    X, y = frame()
    X = X[["age", "income"]].to_numpy()
    pipe = make_pipeline(
        Doubler(), RBFSampler(n_components=5, random_state=0), NeuralClassifier(max_epochs=2)
    ).fit(X, y)
    path = skcallback.save(pipe, tmp_path / "pipe.skc")
    names = [f"{__name__}.Doubler", "sklearn.kernel_approximation.RBFSampler"]
    with pytest.raises(ValueError, match="not trusted") as info:
        skcallback.load(path)
    assert all(name in str(info.value) for name in names)
    with pytest.raises(ValueError, match=r"not trusted: \['sklearn.kernel_approximation"):
        skcallback.load(path, trusted=[Doubler])
    for trusted in (names, [Doubler, RBFSampler]):
        loaded = skcallback.load(path, trusted=trusted)
        np.testing.assert_array_equal(loaded.predict_proba(X), pipe.predict_proba(X))


def test_loading_a_pipeline_unpickles_nothing(tmp_path, monkeypatch):
    X, y = frame()
    pipe = classifier_pipeline().fit(X, y)
    path = skcallback.save(pipe, tmp_path / "pipe.skc")

    def refuse(*args, **kwargs):
        raise AssertionError("load unpickled something")

    for name in ("loads", "load", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(np, "load", refuse)
    loaded = skcallback.load(path)
    monkeypatch.undo()
    np.testing.assert_array_equal(loaded.predict_proba(X), pipe.predict_proba(X))


def test_a_tampered_pipeline_file_is_refused(tmp_path):
    X, y = frame()
    path = skcallback.save(classifier_pipeline().fit(X, y), tmp_path / "pipe.skc")
    data = bytearray(path.read_bytes())
    at = data.index(b"ignore")  # handle_unknown="ignore"
    data[at : at + 6] = b"error "  # the same length: a readable file, other contents
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupt"):
        skcallback.load(path)


def test_a_crafted_file_cannot_choose_a_folder_or_invent_estimators(tmp_path):
    X, y = frame()
    path = skcallback.save(classifier_pipeline().fit(X, y), tmp_path / "pipe.skc")
    document = document_of(path)
    pairs = document["params"]["__dict__"]
    memory = next(pair for pair in pairs if pair[0] == "memory")
    memory[1] = str(tmp_path / "cache")
    rewrite(path, document)
    with pytest.raises(ValueError, match=r"Pipeline\(memory=...\)"):
        skcallback.load(path)
    memory[1] = None
    steps = next(pair for pair in pairs if pair[0] == "steps")[1]
    steps[1]["__tuple__"][1] = {"__ref__": 7}
    rewrite(path, document)
    with pytest.raises(ValueError, match="malformed: The file refers to an estimator"):
        skcallback.load(path)
    assert not (tmp_path / "cache").exists()


def test_a_crafted_file_cannot_replace_a_method(tmp_path):
    X = np.random.RandomState(0).normal(size=(20, 2))
    path = skcallback.save(StandardScaler().fit(X), tmp_path / "scaler.skc")
    document = document_of(path)
    # numpy.log1p loads without trust: as an attribute, it would be transform.
    document["fitted"]["__dict__"].append(["transform", {"__function__": "numpy.log1p"}])
    rewrite(path, document)
    with pytest.raises(ValueError, match=r"parameters or methods: \['transform'\]"):
        skcallback.load(path)


def test_a_pipeline_that_writes_to_a_folder_is_refused_at_save(tmp_path):
    pipe = Pipeline([("net", NeuralClassifier())], memory=str(tmp_path / "cache"))
    with pytest.raises(TypeError, match=r"Pipeline\(memory=.*Set memory=None"):
        skcallback.save(pipe, tmp_path / "pipe.skc")
    assert not (tmp_path / "pipe.skc").exists()


def test_a_search_is_refused_at_save_with_what_to_save_instead(tmp_path):
    X, y = frame()
    X = X[["age", "income"]].to_numpy()
    search = GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=2).fit(X, y)
    with pytest.raises(TypeError, match=r"save\(search.best_estimator_, path\)"):
        skcallback.save(search, tmp_path / "search.skc")
    loaded = skcallback.load(skcallback.save(search.best_estimator_, tmp_path / "best.skc"))
    np.testing.assert_array_equal(loaded.predict(X), search.predict(X))


def test_object_arrays_of_other_values_are_refused_at_save(tmp_path):
    dates = pd.DataFrame({"day": [datetime.date(2026, 1, d) for d in (1, 2, 3)]})
    encoder = OneHotEncoder().fit(dates)
    with pytest.raises(TypeError, match=r"object array holding a date .*'categories_'"):
        skcallback.save(encoder, tmp_path / "encoder.skc")
    # str, int and float: kept, each of its type.
    mixed = OneHotEncoder().fit(pd.DataFrame({"v": np.array([1, 2.5, 2.5], dtype=object)}))
    loaded = skcallback.load(skcallback.save(mixed, tmp_path / "encoder.skc"))
    assert [type(v) for v in loaded.categories_[0]] == [int, float]


#: Constructor arguments of the allow-listed classes that need some.
ALLOWED_ARGS = {
    "Pipeline": lambda: {"steps": [("scale", StandardScaler()), ("lr", LogisticRegression())]},
    "FeatureUnion": lambda: {"transformer_list": [("scale", StandardScaler())]},
    "ColumnTransformer": lambda: {"transformers": [("scale", StandardScaler(), [0, 1])]},
    "TransformedTargetRegressor": lambda: {"regressor": Ridge()},
    "SelectFromModel": lambda: {"estimator": Ridge()},
    "SelectKBest": lambda: {"k": 2},
    "QuantileTransformer": lambda: {"n_quantiles": 10},
    "PCA": lambda: {"n_components": 2},
    "IncrementalPCA": lambda: {"n_components": 2},
    "TruncatedSVD": lambda: {"n_components": 2},
    "StackingClassifier": lambda: {"estimators": [("a", LogisticRegression()), ("b", Ridge())]},
    "VotingClassifier": lambda: {"estimators": [("a", LogisticRegression())]},
    "StackingRegressor": lambda: {"estimators": [("a", Ridge()), ("b", Ridge(alpha=2))]},
    "VotingRegressor": lambda: {"estimators": [("a", Ridge())]},
}


def dense(array):
    return array.toarray() if hasattr(array, "toarray") else array


@pytest.mark.parametrize("path", ALLOWED, ids=lambda path: path.rpartition(".")[2])
def test_every_allow_listed_class_round_trips_exactly(tmp_path, path):
    cls = resolve_allowed(path)
    est = cls(**ALLOWED_ARGS.get(cls.__name__, dict)())
    if isinstance(est, StackingClassifier):
        est.set_params(estimators=[("a", LogisticRegression()), ("b", LogisticRegression(C=2))])
    X = np.abs(np.random.RandomState(0).normal(size=(40, 3))) + 0.1
    labels = np.where(X[:, 0] > X[:, 0].mean(), "big", "small")
    scores_labels = cls.__name__ in ("SelectKBest", "SelectPercentile")  # f_classif
    y = labels if is_classifier(est) or scores_labels else X.sum(axis=1)
    if cls.__name__ in ("LabelEncoder", "LabelBinarizer"):
        X = labels
        est.fit(X)
    else:
        est.fit(X, y)
    loaded = skcallback.load(skcallback.save(est, tmp_path / "model.skc"))
    assert type(loaded) is cls
    methods = [m for m in ("predict", "predict_proba", "transform") if hasattr(est, m)]
    assert methods
    for method in methods:
        expected, got = getattr(est, method)(X), getattr(loaded, method)(X)
        assert type(got) is type(expected)
        np.testing.assert_array_equal(dense(got), dense(expected))


def test_the_documented_allow_list_is_the_one_in_force():
    page = (Path(__file__).resolve().parents[1] / "docs" / "persistence.md").read_text()
    rows = re.findall(r"^\| `(sklearn\.[a-z_]+)` \| (.*) \|$", page, flags=re.MULTILINE)
    listed = {
        f"{module}.{name}" for module, names in rows for name in re.findall(r"`(\w+)`", names)
    }
    assert listed == set(ALLOWED)


# Defined here, then named as if the script being run (__main__) had defined them.
class MainNet(nn.Module):
    def __init__(self, n_features_in, n_outputs):
        super().__init__()
        self.linear = nn.Linear(n_features_in, n_outputs)

    def forward(self, X):
        return self.linear(X)


class MainDoubler(Doubler):
    pass


def on_epoch(ctx):
    pass


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: NeuralRegressor(module=MainNet), "class MainNet"),
        (lambda: make_pipeline(MainDoubler(), NeuralRegressor()), "class MainDoubler"),
        (
            lambda: NeuralRegressor(callbacks=[LambdaCallback(on_epoch_end=on_epoch)]),
            "function on_epoch",
        ),
    ],
)
def test_a_class_or_function_of_main_is_refused_at_save(tmp_path, monkeypatch, make, name):
    for obj in (MainNet, MainDoubler, on_epoch):
        monkeypatch.setattr(obj, "__module__", "__main__")
    with pytest.raises(TypeError, match=rf"{name} .*__main__.*Move .* to a module.*pickle"):
        skcallback.save(make(), tmp_path / "model.skc")
    assert not (tmp_path / "model.skc").exists()


def test_a_bare_estimator_keeps_the_format_earlier_versions_read(tmp_path, regression_data):
    X, y = regression_data
    path = skcallback.save(NeuralRegressor(max_epochs=1).fit(X, y), tmp_path / "model.skc")
    assert document_of(path)["format"] == "skcallback-model-2"
    pipe = skcallback.save(make_pipeline(NeuralRegressor()), tmp_path / "pipe.skc")
    assert document_of(pipe)["format"] == "skcallback-model-3"


def test_another_scikit_learn_version_is_warned_about(tmp_path):
    path = skcallback.save(make_pipeline(StandardScaler()), tmp_path / "pipe.skc")
    document = document_of(path)
    document["sklearn"] = "0.1"
    rewrite(path, document)
    with pytest.warns(InconsistentVersionWarning, match="0.1"):
        skcallback.load(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        skcallback.load(skcallback.save(make_pipeline(StandardScaler()), path))


def test_skops_loads_a_pipeline_trusting_only_skcallback_classes(tmp_path):
    sio = pytest.importorskip("skops.io")
    X, y = frame()
    X = X[["age", "income"]].to_numpy()
    net = NeuralClassifier(max_epochs=2, random_state=0, callbacks=[EarlyStopping()])
    pipe = make_pipeline(StandardScaler(), net).fit(X, y)
    path = tmp_path / "pipe.skops"
    sio.dump(pipe, path)
    # The fitted torch state travels as plain data: no torch type is listed,
    # only the classes the parameters name.
    ours = [
        "skcallback._classifier.NeuralClassifier",
        "skcallback.callbacks._early_stopping.EarlyStopping",
    ]
    assert sio.get_untrusted_types(file=path) == ours
    loaded = sio.load(path, trusted=ours)
    np.testing.assert_array_equal(loaded.predict(X), pipe.predict(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), pipe.predict_proba(X))
