"""skcallback.export and the skl2onnx converters of skcallback.onnx: the
exported files reproduce predict/predict_proba, at any batch size."""

import sys
from importlib.util import find_spec

import numpy as np
import pytest
import torch
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from torch import nn

import skcallback._export
from skcallback import NeuralClassifier, NeuralRegressor, export

HAS_ONNX = all(find_spec(name) for name in ("onnx", "onnxruntime"))
HAS_SKL2ONNX = HAS_ONNX and find_spec("skl2onnx") is not None
needs_onnx = pytest.mark.skipif(not HAS_ONNX, reason="needs the onnx extra")
needs_skl2onnx = pytest.mark.skipif(not HAS_SKL2ONNX, reason="needs the onnx extra")
# torch.export's dynamic shapes of a *args forward: run from torch 2.5 on only.
TORCH_EXPORT = tuple(int(part) for part in torch.__version__.split(".")[:2]) >= (2, 5)
needs_torch_export = pytest.mark.skipif(not TORCH_EXPORT, reason="torch.export from torch 2.5")

FORMATS = [
    pytest.param("onnx", marks=needs_onnx),
    "torchscript",
    pytest.param("exported_program", marks=needs_torch_export),
]
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt", "exported_program": ".pt2"}

RNG = np.random.RandomState(0)
X = RNG.normal(size=(60, 4)).astype(np.float32)
X_NEW = RNG.normal(size=(1000, 4)).astype(np.float32)
CLASSES = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
TARGETS = {
    "binary": (NeuralClassifier, (X[:, 0] > 0).astype(int)),
    "multiclass": (NeuralClassifier, CLASSES),
    "strings": (NeuralClassifier, np.array(["cat", "dog", "emu"])[CLASSES]),
    "multilabel": (NeuralClassifier, np.c_[X[:, 0] > 0, X[:, 1] > 0, X[:, 2] > 0].astype(int)),
    "regression": (NeuralRegressor, X @ np.array([1.0, -2.0, 0.5, 0.0])),
    "two_targets": (NeuralRegressor, X[:, :2] * 3),
}


def small(cls, **params):
    return cls(hidden_layer_sizes=(8,), max_epochs=3, lr=0.01, random_state=0, **params)


@pytest.fixture(scope="module", params=sorted(TARGETS))
def fitted(request):
    cls, y = TARGETS[request.param]
    return small(cls).fit(X, y)


def run_exported(path, format, *inputs, classes=None):
    """The exported file's outputs, as numpy arrays, by the format's own
    runtime (no skcallback): ONNX Runtime, torch.jit.load, torch.export.load."""
    if format == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [value.name for value in session.get_inputs()]
        return session.run(None, dict(zip(names, inputs, strict=True)))
    if format == "torchscript":
        model = torch.jit.load(str(path))
    else:
        model = torch.export.load(str(path)).module()
    with torch.no_grad():
        output = model(*(torch.from_numpy(array) for array in inputs))
    return [o.numpy() for o in (output if isinstance(output, tuple) else (output,))]


def expected(estimator, X):
    if isinstance(estimator, NeuralRegressor):
        return [estimator.predict(X)]
    return [estimator.predict(X), estimator.predict_proba(X)]


def assert_reproduces(estimator, path, format, X):
    got = run_exported(path, format, X)
    want = expected(estimator, X)
    if format != "onnx" and isinstance(estimator, NeuralClassifier) and not estimator._multilabel:
        got[0] = estimator.classes_[got[0]]  # torch formats return the class index
    assert len(got) == len(want)
    assert got[0].shape == want[0].shape
    if len(want) == 2:
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_allclose(got[1], want[1], atol=1e-5)
    else:
        np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("format", FORMATS)
def test_export_reproduces_predict_at_any_batch_size(fitted, format, tmp_path):
    path = tmp_path / f"model{SUFFIX[format]}"
    assert export(fitted, path, format, X_sample=X[:3]) == path
    for rows in (X_NEW[:1], X_NEW):  # exported on 3 rows (traced on 4), run on 1 and 1000
        assert_reproduces(fitted, path, format, rows)


@needs_onnx
def test_onnx_outputs_are_named_and_carry_the_labels(tmp_path):
    import onnxruntime as ort

    clf = small(NeuralClassifier).fit(X, TARGETS["strings"][1])
    path = export(clf, tmp_path / "clf.onnx")  # sample rows made from the fitted shape
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [value.name for value in session.get_inputs()] == ["X"]
    assert [value.name for value in session.get_outputs()] == ["label", "probabilities"]
    assert session.get_modelmeta().custom_metadata_map["classes"] == '["cat", "dog", "emu"]'
    labels, _ = session.run(None, {"X": X_NEW[:5]})
    assert labels.tolist() == clf.predict(X_NEW[:5]).tolist()


class SmallCNN(nn.Module):
    def __init__(self, n_outputs):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.head = nn.Linear(3 * 6 * 6, n_outputs)

    def forward(self, X):
        return self.head(torch.relu(self.conv(X)).flatten(1))


@pytest.mark.parametrize("format", FORMATS)
def test_an_image_network_exports_with_a_dynamic_batch(format, tmp_path):
    images = RNG.uniform(size=(30, 1, 6, 6)).astype(np.float32)
    clf = NeuralClassifier(module=SmallCNN, max_epochs=2, random_state=0)
    clf.fit(images, RNG.randint(0, 3, 30))
    path = export(clf, tmp_path / f"cnn{SUFFIX[format]}", format)
    for rows in (images[:1], np.repeat(images, 10, axis=0)):
        assert_reproduces(clf, path, format, rows)


@pytest.mark.parametrize("format", FORMATS)
def test_a_mixed_precision_model_exports_in_float32(format, tmp_path):
    clf = small(NeuralClassifier, precision="bf16-mixed", device="cpu").fit(X, CLASSES)
    path = export(clf, tmp_path / f"bf16{SUFFIX[format]}", format)
    float32 = clf.set_params(precision="32")  # predict without autocast, as the file computes
    assert_reproduces(float32, path, format, X_NEW)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("format", FORMATS)
def test_a_model_fitted_on_a_gpu_exports_for_the_cpu(format, tmp_path):
    clf = small(NeuralClassifier, device="cuda").fit(X, CLASSES)
    path = export(clf, tmp_path / f"gpu{SUFFIX[format]}", format)
    assert_reproduces(clf, path, format, X_NEW)
    assert next(clf.module_.parameters()).is_cuda  # the estimator's module stays there


class TwoInputs(nn.Module):
    def __init__(self, n_outputs):
        super().__init__()
        self.numbers = nn.Linear(3, 4)
        self.codes = nn.Embedding(5, 4)
        self.out = nn.Linear(4, n_outputs)

    def forward(self, numbers, codes):
        return self.out(torch.tanh(self.numbers(numbers) + self.codes(codes)))


@pytest.mark.parametrize("format", FORMATS)
def test_a_dict_input_exports_one_input_per_key(format, tmp_path):
    inputs = {"numbers": X[:, :3], "codes": RNG.randint(0, 5, 60)}
    reg = NeuralRegressor(module=TwoInputs, max_epochs=2, random_state=0).fit(inputs, X[:, 3])
    path = export(reg, tmp_path / f"two{SUFFIX[format]}", format)
    if format == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert [value.name for value in session.get_inputs()] == ["numbers", "codes"]
    new = {"numbers": X_NEW[:7, :3], "codes": RNG.randint(0, 5, 7)}
    (got,) = run_exported(path, format, new["numbers"], new["codes"])
    np.testing.assert_allclose(got, reg.predict(new), rtol=1e-5, atol=1e-5)


class LeavesTorch(nn.Module):
    """Computes through NumPy: a tracer records the result as a constant."""

    def __init__(self, n_features_in, n_outputs):
        super().__init__()
        self.linear = nn.Linear(n_features_in, n_outputs)

    def forward(self, X):
        return self.linear(torch.from_numpy(np.tanh(X.detach().numpy())))


@pytest.mark.parametrize("format", [pytest.param("onnx", marks=needs_onnx), "torchscript"])
def test_an_export_that_does_not_reproduce_predict_is_refused(format, tmp_path):
    clf = NeuralClassifier(module=LeavesTorch, max_epochs=2, random_state=0).fit(X, CLASSES)
    path = tmp_path / f"frozen{SUFFIX[format]}"
    with pytest.warns(torch.jit.TracerWarning), pytest.raises(RuntimeError, match="reproduce"):
        export(clf, path, format)
    assert list(tmp_path.iterdir()) == []  # neither the file nor its partial copy


def shifted_probabilities(labels, proba):
    return labels, proba * 0.999  # off by 1e-3 of a probability


def shifted_labels(labels, proba):
    return (labels + 1) % 3, proba


@pytest.mark.parametrize("format", FORMATS)
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (shifted_probabilities, r"predict_proba .*largest difference"),
        (shifted_labels, r"predict .*labels differ"),
    ],
)
def test_the_check_compares_the_output_step(format, change, message, tmp_path, monkeypatch):
    clf = small(NeuralClassifier).fit(X, CLASSES)
    original = skcallback._export.Deployed.forward
    monkeypatch.setattr(
        skcallback._export.Deployed, "forward", lambda net, *x: change(*original(net, *x))
    )
    path = tmp_path / f"model{SUFFIX[format]}"
    path.write_text("the previous model")
    with pytest.raises(RuntimeError, match=message):
        export(clf, path, format)
    assert path.read_text() == "the previous model"
    assert len(list(tmp_path.iterdir())) == 1


def test_the_check_runs_the_export_on_one_row(tmp_path, monkeypatch):
    """A batch of one is where exporters specialise sizes: the check runs it."""
    runner = skcallback._export._RUNNERS["torchscript"]

    def not_on_one_row(estimator, path):
        run = runner(estimator, path)
        return lambda inputs: run(inputs) if len(inputs[0]) > 1 else 1 / 0

    monkeypatch.setitem(skcallback._export._RUNNERS, "torchscript", not_on_one_row)
    clf = small(NeuralClassifier).fit(X, CLASSES)
    with pytest.raises(RuntimeError, match="fails on a batch of 1 row ") as info:
        export(clf, tmp_path / "model.pt", "torchscript")
    assert isinstance(info.value.__cause__, ZeroDivisionError)


class Cumulative(nn.Module):
    """torch.cummax: no ONNX operator for it in torch's exporter."""

    def __init__(self, n_features_in, n_outputs):
        super().__init__()
        self.linear = nn.Linear(n_features_in, n_outputs)

    def forward(self, X):
        return self.linear(torch.cummax(X, dim=1)[0])


@pytest.mark.parametrize(
    ("module", "format"),
    [
        pytest.param(Cumulative, "onnx", marks=needs_onnx),
        pytest.param(LeavesTorch, "exported_program", marks=needs_torch_export),
    ],
)
def test_an_untraceable_module_is_said_so(module, format, tmp_path):
    clf = NeuralClassifier(module=module, max_epochs=1, random_state=0).fit(X, CLASSES)
    with pytest.raises(
        RuntimeError, match=f"Could not export the module {module.__name__}.*'{format}'"
    ) as info:
        export(clf, tmp_path / "model", format)
    assert info.value.__cause__ is not None  # torch's own error, kept
    assert list(tmp_path.iterdir()) == []


def test_a_tracer_failure_is_said_in_our_words(tmp_path, monkeypatch):
    def fails(*args, **kwargs):
        raise RuntimeError("tracer says no")

    monkeypatch.setattr(torch.jit, "trace", fails)
    clf = small(NeuralRegressor).fit(X, X[:, 0])
    with pytest.raises(RuntimeError, match=r"'torchscript'.*tracer says no") as info:
        export(clf, tmp_path / "model.pt", "torchscript")
    assert str(info.value.__cause__) == "tracer says no"


def test_export_refuses_an_unfitted_estimator_and_an_unknown_format(tmp_path):
    with pytest.raises(NotFittedError):
        export(small(NeuralClassifier), tmp_path / "model.onnx")
    clf = small(NeuralClassifier).fit(X, CLASSES)
    with pytest.raises(ValueError, match=r"format must be one of \['onnx', 'torchscript'"):
        export(clf, tmp_path / "model.onnx", format="tflite")
    assert list(tmp_path.iterdir()) == []


class ItemNet(nn.Module):
    def __init__(self, input_shape, n_outputs):
        super().__init__()
        self.linear = nn.Linear(input_shape[0], n_outputs)

    def forward(self, X):
        return self.linear(X)


class Rows(torch.utils.data.Dataset):
    def __len__(self):
        return len(X)

    def __getitem__(self, index):
        return X[index], X[index, 0]


def test_export_takes_our_estimators_and_rows_as_predict_takes_them(tmp_path):
    pipeline = Pipeline([("scale", StandardScaler()), ("net", small(NeuralRegressor))])
    pipeline.fit(X, X[:, 0])
    with pytest.raises(TypeError, match=r"got Pipeline\. Convert a Pipeline .* skl2onnx"):
        export(pipeline, tmp_path / "model.pt", "torchscript")
    on_items = NeuralRegressor(module=ItemNet, max_epochs=2, random_state=0).fit(Rows(), None)
    with pytest.raises(ValueError, match="X_sample must be an array"):
        export(on_items, tmp_path / "model.pt", "torchscript", X_sample=Rows())
    with pytest.raises(ValueError, match="X has 3 features"):
        export(pipeline[-1], tmp_path / "model.pt", "torchscript", X_sample=X[:, :3])
    assert list(tmp_path.iterdir()) == []
    export(on_items, tmp_path / "model.pt", "torchscript")  # rows of the items' shape
    assert_reproduces(on_items, tmp_path / "model.pt", "torchscript", X_NEW)


def test_onnx_without_its_extra_names_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime fails
    clf = small(NeuralClassifier).fit(X, CLASSES)
    with pytest.raises(ImportError, match=r"needs onnxruntime.*pip install '\.\[onnx\]'"):
        export(clf, tmp_path / "model.onnx")


# ---------------------------------------------------------------- skl2onnx


def convert(pipeline, options=None, sample=X[:1]):
    """A function running the pipeline converted by skl2onnx in ONNX
    Runtime, with its ``session``."""
    import onnxruntime as ort
    from skl2onnx import to_onnx

    import skcallback.onnx  # noqa: F401  (registers the converters)

    onx = to_onnx(pipeline, sample, options=options)
    session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])

    def run(rows):
        return session.run(None, {session.get_inputs()[0].name: rows})

    run.session = session
    return run


@needs_skl2onnx
@pytest.mark.parametrize("kind", ["binary", "multiclass", "strings"])
def test_skl2onnx_converts_a_pipeline_of_a_classifier(kind):
    pipeline = Pipeline([("scale", StandardScaler()), ("net", small(NeuralClassifier))])
    pipeline.fit(X * 5 + 2, TARGETS[kind][1])
    labels, probabilities = convert(pipeline)(X_NEW * 5 + 2)
    np.testing.assert_array_equal(labels, pipeline.predict(X_NEW * 5 + 2))
    classes = pipeline.classes_
    as_array = np.array([[row[c] for c in classes] for row in probabilities])  # ZipMap's dicts
    np.testing.assert_allclose(as_array, pipeline.predict_proba(X_NEW * 5 + 2), atol=1e-5)


@needs_skl2onnx
@pytest.mark.parametrize("kind", ["strings", "multilabel"])
def test_skl2onnx_without_zipmap_gives_the_probability_matrix(kind):
    net = small(NeuralClassifier)
    pipeline = Pipeline([("scale", StandardScaler()), ("net", net)]).fit(X, TARGETS[kind][1])
    run = convert(pipeline, {id(net): {"zipmap": False}})
    labels, probabilities = run(X_NEW)
    np.testing.assert_array_equal(labels, pipeline.predict(X_NEW))
    np.testing.assert_allclose(probabilities, pipeline.predict_proba(X_NEW), atol=1e-5)
    width = len(net.classes_)
    declared = [output.shape[1:] for output in run.session.get_outputs()]
    assert declared == ([[width], [width]] if kind == "multilabel" else [[], [width]])


@needs_skl2onnx
def test_skl2onnx_converts_float64_inputs_and_boolean_labels():
    net = small(NeuralClassifier)
    pipeline = Pipeline([("scale", StandardScaler()), ("net", net)]).fit(X, X[:, 0] > 0)
    rows = X_NEW.astype(np.float64)  # skl2onnx then computes in float64; the network in float32
    labels, probabilities = convert(pipeline, {id(net): {"zipmap": False}}, rows[:1])(rows)
    assert labels.dtype == np.int64 and probabilities.dtype == np.float64  # skl2onnx's types
    np.testing.assert_array_equal(labels, pipeline.predict(rows))
    np.testing.assert_allclose(probabilities, pipeline.predict_proba(rows), atol=1e-5)


@needs_skl2onnx
def test_skl2onnx_converts_a_column_transformer_and_a_regressor():
    columns = ColumnTransformer([("a", StandardScaler(), [0, 1]), ("b", MinMaxScaler(), [2, 3])])
    pipeline = Pipeline([("columns", columns), ("net", small(NeuralRegressor))])
    pipeline.fit(X, TARGETS["regression"][1])
    (predictions,) = convert(pipeline)(X_NEW)
    assert predictions.shape == (len(X_NEW), 1)  # skl2onnx's shape for a regressor
    np.testing.assert_allclose(predictions[:, 0], pipeline.predict(X_NEW), rtol=1e-5, atol=1e-5)


@needs_skl2onnx
def test_skl2onnx_converts_a_column_transformer_and_a_classifier():
    columns = ColumnTransformer([("a", StandardScaler(), [0, 1]), ("b", MinMaxScaler(), [2, 3])])
    pipeline = Pipeline([("columns", columns), ("net", small(NeuralClassifier))])
    pipeline.fit(X, TARGETS["strings"][1])
    labels, _ = convert(pipeline)(X_NEW)
    np.testing.assert_array_equal(labels, pipeline.predict(X_NEW))
