"""``export``: a fitted estimator's network and its output step as an ONNX,
TorchScript or ``torch.export`` file, checked against ``predict`` before it
is put in place."""

from __future__ import annotations

import copy
import inspect
import io
import json
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import is_classifier
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._base import NeuralEstimatorBase, _module_dtype
from ._extras import import_extra
from ._loading import Items

FORMATS = ("onnx", "torchscript", "exported_program")
#: The opset ``export`` writes: one that torch's TorchScript-based ONNX
#: exporter writes from torch 2.4 on, and ONNX Runtime reads since 1.14.
ONNX_OPSET = 17
#: Rows made for the check when ``X_sample`` is None.
SAMPLE_ROWS = 8
#: How closely the exported model must reproduce the estimator's outputs.
TOLERANCE = 1e-5

Inputs = tuple[np.ndarray, ...]


class Deployed(nn.Module):
    """A fitted module followed by the estimator's output step, taking its
    inputs as positional tensors (a dict ``X``'s arrays in key order).

    ``step`` is "softmax" (returns the class index of the largest logit and
    the softmax), "sigmoid" (the 0/1 indicator of the positive logits and
    their sigmoid, for a multi-label fit), "ravel" (a 1-D regression) or
    "identity" (several regression targets)."""

    def __init__(self, module: nn.Module, keys: Sequence[str], step: str) -> None:
        super().__init__()
        self.module = module
        self.keys = tuple(keys)
        self.step = step

    def forward(self, *inputs: torch.Tensor) -> Any:
        if self.keys:
            output = self.module(**dict(zip(self.keys, inputs, strict=True)))
        else:
            output = self.module(*inputs)
        if self.step == "softmax":
            return output.argmax(dim=1), torch.softmax(output, dim=1)
        if self.step == "sigmoid":
            # sigmoid(z) > 0.5 exactly where z > 0: predict's rule, without rounding.
            return (output > 0).to(torch.int64), torch.sigmoid(output)
        if self.step == "ravel":
            return output.reshape(-1)
        if self.step == "columns":
            return output.reshape(output.shape[0], -1)
        return output


def export(
    estimator: Any, path: str | os.PathLike, format: str = "onnx", *, X_sample: Any = None
) -> Path:
    """Write a fitted estimator's network, with its output step, to a file
    that runs without skcallback (nor, for ONNX, torch).

    The file holds the network in eval mode on the CPU, followed by what
    ``predict_proba`` and ``predict`` do to its output: for a classifier the
    class probabilities (softmax of the logits; the sigmoid of each logit for
    a multi-label fit) and the labels; for a regressor the predictions,
    shaped as ``predict`` returns them (1-D for a 1-D ``y``). The batch size
    is dynamic. The file is written beside ``path``, run on sample rows (all
    of them, then one) and compared with the estimator's own predictions;
    only when they agree (labels exactly, numbers to 1e-5) does it replace
    ``path``.

    Parameters
    ----------
    estimator : NeuralClassifier or NeuralRegressor
        A fitted estimator (not a Pipeline: convert one with ``skl2onnx``
        after ``import skcallback.onnx``).
    path : str or path-like
        Where to write the file.
    format : {"onnx", "torchscript", "exported_program"}, default="onnx"
        ``"onnx"``: an ONNX model (opset 17), input ``"X"`` (a dict ``X``:
        one input per key, named by it), outputs ``"label"`` (the labels of
        ``classes_``, strings included; the 0/1 indicator matrix for a
        multi-label fit) and ``"probabilities"`` for a classifier,
        ``"predictions"`` for a regressor; ``classes_`` is also in the
        metadata (``"classes"``, JSON). Needs the ``onnx`` extra.
        ``"torchscript"``: ``torch.jit.trace`` saved by ``torch.jit.save``.
        ``"exported_program"``: ``torch.export.export`` saved by
        ``torch.export.save``. Both take the input tensors positionally (a
        dict's in key order) and return ``(class_index, probabilities)``
        for a classifier (the label is ``classes_[class_index]``), the
        indicator matrix and probabilities for a multi-label fit, the
        predictions for a regressor.
    X_sample : array-like or dict of arrays, optional
        Rows to trace and check the export on, of the kind ``predict``
        takes. None makes 8 rows of the fitted input shape from a seeded
        standard normal (zeros for integer and boolean inputs); a model
        fitted on a Dataset whose items had no fixed shape needs them.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted.
    TypeError
        For an estimator other than skcallback's (a Pipeline: see
        ``skcallback.onnx``).
    ValueError
        For an unknown ``format`` or unusable ``X_sample``.
    ImportError
        For ``"onnx"`` without the ``onnx`` extra (onnx, onnxruntime).
    RuntimeError
        When torch cannot trace or export the module (torch's error is the
        ``__cause__``), or the exported model does not reproduce the
        estimator's predictions on the sample rows; ``path`` is then left
        as it was.
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {list(FORMATS)}; got {format!r}.")
    if not isinstance(estimator, NeuralEstimatorBase):
        raise TypeError(
            "export takes a NeuralClassifier or NeuralRegressor; got "
            f"{type(estimator).__name__}. Convert a Pipeline that ends in one with skl2onnx "
            "(import skcallback.onnx, then skl2onnx.to_onnx(pipeline, X[:1]))."
        )
    check_is_fitted(estimator)
    if format == "onnx":  # before any work: the missing extra is the first thing to say
        import_extra("onnxruntime", "onnx", "export(format='onnx')")
    inputs = sample_inputs(estimator, X_sample)
    path = Path(path)
    # torch.export.save wants its suffix: ".model.partial.pt2" for "model.pt2".
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        _WRITERS[format](estimator, inputs, partial)
        check_reproduces(estimator, inputs, _RUNNERS[format](estimator, partial), format)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def deployed(estimator: Any, *, columns: bool = False) -> Deployed:
    """A CPU copy of the fitted module with the estimator's output step;
    a regressor's predictions as ``predict`` shapes them, or as columns
    ``(N, n_targets)`` where ``columns``."""
    if is_classifier(estimator):
        step = "sigmoid" if estimator._multilabel else "softmax"
    elif columns:
        step = "columns"
    else:
        step = "ravel" if vars(estimator).get("_y_ndim", 1) == 1 else "identity"
    module = copy.deepcopy(estimator.module_).to("cpu").eval()
    return Deployed(module, input_keys(estimator), step)


def input_keys(estimator: Any) -> tuple[str, ...]:
    """The keys of a dict ``X``, in the order the exported model takes
    them; none for an array."""
    spec = vars(estimator).get("_input_spec") or {}
    return tuple(spec.get("fields", ()))


def sample_inputs(estimator: Any, X_sample: Any) -> Inputs:
    """The sample rows as arrays in the exported model's input order."""
    if X_sample is None:
        return made_rows(estimator)
    X = estimator._predict_input(X_sample)
    if isinstance(X, Items):
        raise ValueError(
            "X_sample must be an array (or a dict of arrays) of rows as predict takes them; "
            f"got {type(X_sample).__name__}. Pass a few rows, e.g. np.stack([dataset[i][0] "
            "for i in range(8)])."
        )
    if isinstance(X, dict):
        return tuple(np.ascontiguousarray(X[key]) for key in input_keys(estimator))
    return (X.toarray() if sp.issparse(X) else np.ascontiguousarray(X),)


def made_rows(estimator: Any) -> Inputs:
    """``SAMPLE_ROWS`` rows of the fitted input shape: seeded standard
    normal values in the module's dtype, zeros for integer and boolean
    inputs (indices, masks)."""
    rng = np.random.default_rng(0)
    dtype = _module_dtype(estimator.module_)
    spec = vars(estimator).get("_input_spec")
    if spec is None:
        return (rng.standard_normal((SAMPLE_ROWS, estimator.n_features_in_)).astype(dtype),)
    if spec["kind"] == "dict":
        kinds = {"float": dtype, "int": np.dtype(np.int64), "bool": np.dtype(np.bool_)}
        return tuple(
            rng.standard_normal((SAMPLE_ROWS, *field["shape"])).astype(dtype)
            if field["kind"] == "float"
            else np.zeros((SAMPLE_ROWS, *field["shape"]), kinds[field["kind"]])
            for field in spec["fields"].values()
        )
    if "shape" not in spec:
        raise ValueError(
            f"The {type(estimator).__name__} was fitted on a Dataset whose items have no fixed "
            "shape; pass X_sample= (a few rows as the module takes them) to export it."
        )
    return (rng.standard_normal((SAMPLE_ROWS, *spec["shape"])).astype(dtype),)


def example_tensors(inputs: Inputs) -> tuple[torch.Tensor, ...]:
    """The tensors to trace on: the sample rows reversed, then the first
    one again. The check then runs the export on rows it was not traced on
    (values and batch size), which exposes what the trace froze."""
    return tuple(torch.from_numpy(np.concatenate([array[::-1], array[:1]])) for array in inputs)


def traced(estimator: Any, format: str, trace: Callable[[], Any]) -> Any:
    """What ``trace()`` returns; torch's failure said in our words, with
    torch's exception as the cause."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return trace()
    except Exception as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise RuntimeError(
            f"Could not export the module {type(estimator.module_).__name__} of the "
            f"{type(estimator).__name__} to {format!r}: torch's exporter failed "
            f"({type(exc).__name__}: {message}). Exporting traces the module's forward "
            "on tensors; Python-side work on their values (NumPy calls, .item(), "
            "data-dependent branches) cannot be recorded. See the cause below."
        ) from exc


#: The exported outputs' names, by output step (before ONNX's labels).
OUTPUT_NAMES = {
    "softmax": ("label_index", "probabilities"),
    "sigmoid": ("label", "probabilities"),
    "ravel": ("predictions",),
    "identity": ("predictions",),
    "columns": ("predictions",),
}


def onnx_model(
    estimator: Any, inputs: Inputs, opset: int = ONNX_OPSET, *, columns: bool = False
) -> Any:
    """The estimator as an ONNX ``ModelProto``, by torch's TorchScript-based
    exporter: inputs named by ``input_keys`` (``"X"`` for an array), the
    outputs of ``OUTPUT_NAMES`` with a ``"label"`` gathered from
    ``classes_`` in place of a class index, the batch dimension ``"N"``
    (``columns``: see ``deployed``)."""
    onnx = import_extra("onnx", "onnx", "export(format='onnx')")
    net = deployed(estimator, columns=columns)
    names = net.keys or ("X",)
    outputs = OUTPUT_NAMES[net.step]
    buffer = io.BytesIO()
    export_onnx: Callable[..., Any] = torch.onnx.export  # it writes to a buffer too
    options: dict[str, Any] = dict(
        input_names=list(names),
        output_names=list(outputs),
        dynamic_axes={name: {0: "N"} for name in (*names, *outputs)},
        opset_version=opset,
    )
    # The torch.export-based exporter (dynamo=True), torch's default from 2.9,
    # takes 2-3 times as long, needs onnxscript and torch 2.5: this one does
    # what the output step needs from torch 2.4 on.
    if "dynamo" in inspect.signature(export_onnx).parameters:
        options["dynamo"] = False
    traced(estimator, "onnx", lambda: export_onnx(net, example_tensors(inputs), buffer, **options))
    model = onnx.load_model_from_string(buffer.getvalue())
    if net.step == "softmax":
        _gather_labels(onnx, model, np.asarray(estimator.classes_))
    if is_classifier(estimator):
        classes = [c.item() if isinstance(c, np.generic) else c for c in estimator.classes_]
        onnx.helper.set_model_props(model, {"classes": json.dumps(classes)})
    return model


def _gather_labels(onnx: Any, model: Any, classes: np.ndarray) -> None:
    """Replace the ``label_index`` output by ``label``, the entry of
    ``classes`` it indexes (strings too, which torch cannot hold)."""
    if classes.dtype.kind in "USO":
        classes = classes.astype(str).astype(object)
    elif classes.dtype.kind in "iu":
        classes = classes.astype(np.int64)
    table = onnx.numpy_helper.from_array(classes, "skcallback_classes")
    graph = model.graph
    graph.initializer.append(table)
    graph.node.append(
        onnx.helper.make_node("Gather", [table.name, "label_index"], ["label"], axis=0)
    )
    label = onnx.helper.make_tensor_value_info("label", table.data_type, ["N"])
    index = next(i for i, value in enumerate(graph.output) if value.name == "label_index")
    graph.output.remove(graph.output[index])
    graph.output.insert(index, label)


def _write_onnx(estimator: Any, inputs: Inputs, path: Path) -> None:
    path.write_bytes(onnx_model(estimator, inputs).SerializeToString())


def _write_torchscript(estimator: Any, inputs: Inputs, path: Path) -> None:
    net, example = deployed(estimator), example_tensors(inputs)
    # check_trace reruns the trace to compare it: check_reproduces does more.
    script = traced(
        estimator, "torchscript", lambda: torch.jit.trace(net, example, check_trace=False)
    )
    torch.jit.save(script, str(path))


def _write_exported_program(estimator: Any, inputs: Inputs, path: Path) -> None:
    net, example = deployed(estimator), example_tensors(inputs)
    batch = torch.export.Dim("batch")
    program = traced(
        estimator,
        "exported_program",
        lambda: torch.export.export(
            net, example, dynamic_shapes=(tuple({0: batch} for _ in example),)
        ),
    )
    torch.export.save(program, str(path))


_WRITERS: dict[str, Callable[[Any, Inputs, Path], None]] = {
    "onnx": _write_onnx,
    "torchscript": _write_torchscript,
    "exported_program": _write_exported_program,
}

Runner = Callable[[Inputs], list[np.ndarray]]


def _onnx_runner(estimator: Any, path: Path) -> Runner:
    ort = import_extra("onnxruntime", "onnx", "export(format='onnx')")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    taken = {value.name for value in session.get_inputs()}  # unused inputs are dropped
    names = input_keys(estimator) or ("X",)

    def run(inputs: Inputs) -> list[np.ndarray]:
        feed = {name: array for name, array in zip(names, inputs, strict=True) if name in taken}
        return list(session.run(None, feed))

    return run


def _torch_runner(load: Callable[[str], Callable[..., Any]]) -> Callable[[Any, Path], Runner]:
    """A runner of a torch file loaded by ``load``, whose class indices
    become labels as ONNX's ``label`` output holds them."""

    def runner(estimator: Any, path: Path) -> Runner:
        model = load(str(path))

        def run(inputs: Inputs) -> list[np.ndarray]:
            with torch.no_grad():
                output = model(*(torch.from_numpy(array) for array in inputs))
            outputs = [o.numpy() for o in (output if isinstance(output, tuple) else (output,))]
            if is_classifier(estimator) and not estimator._multilabel:
                outputs[0] = estimator.classes_[outputs[0]]
            return outputs

        return run

    return runner


_RUNNERS: dict[str, Callable[[Any, Path], Runner]] = {
    "onnx": _onnx_runner,
    "torchscript": _torch_runner(torch.jit.load),
    "exported_program": _torch_runner(lambda path: torch.export.load(path).module()),
}


def check_reproduces(estimator: Any, inputs: Inputs, run: Runner, format: str) -> None:
    """Raise unless ``run`` gives the estimator's labels and probabilities
    (or predictions) on the sample rows, then on its first row alone (a
    batch size of its own)."""
    for rows in (slice(None), slice(0, 1)):
        part = tuple(array[rows] for array in inputs)
        try:
            got = run(part)
        except Exception as exc:
            raise RuntimeError(
                f"The exported {format!r} model fails on a batch of {_rows(len(part[0]))} "
                f"({type(exc).__name__}); its batch size may have been traced as a constant."
            ) from exc
        _compare(estimator, got, _expected(estimator, part), format)


def _expected(estimator: Any, inputs: Inputs) -> list[np.ndarray]:
    """``predict`` (and ``predict_proba``) of the estimator on ``inputs``."""
    keys = input_keys(estimator)
    X = dict(zip(keys, inputs, strict=True)) if keys else inputs[0]
    if estimator.precision not in ("32", "64"):
        # The export computes in the module's dtype: compare with predict
        # without autocast, on a shallow copy (the estimator is not touched).
        estimator, fitted = object.__new__(type(estimator)), estimator
        vars(estimator).update(vars(fitted), precision="32")
    with warnings.catch_warnings():
        # Made rows are arrays: "X does not have valid feature names" is no news.
        warnings.simplefilter("ignore", UserWarning)
        output = estimator._forward(X)
    outputs = estimator._outputs()
    if is_classifier(estimator):
        return [outputs.predict(output), outputs.predict_proba(output)]
    return [outputs.predict(output)]


def _compare(estimator: Any, got: list[np.ndarray], want: list[np.ndarray], format: str) -> None:
    names = ("predict", "predict_proba") if len(want) == 2 else ("predict",)
    for name, value, expected in zip(reversed(names), reversed(got), reversed(want), strict=True):
        if name == "predict" and len(want) == 2:
            same = _same_labels(value, expected, want[1])
            difference = "labels differ"
        else:
            same = value.shape == expected.shape and np.allclose(
                value, expected, rtol=TOLERANCE, atol=TOLERANCE
            )
            difference = (
                f"largest difference {np.max(np.abs(value - expected)):.3g}"
                if value.shape == expected.shape
                else f"shape {value.shape} against {expected.shape}"
            )
        if not same:
            raise RuntimeError(
                f"The exported {format!r} model does not reproduce "
                f"{type(estimator).__name__}.{name} on {_rows(len(expected))} of the sample "
                f"({difference}; tolerance {TOLERANCE:g}); nothing was written. A module "
                "whose forward depends on Python values (the batch size, .item(), a "
                "branch on the data) is traced with those of the sample."
            )


def _same_labels(labels: np.ndarray, expected: np.ndarray, proba: np.ndarray) -> bool:
    """Whether the labels agree, but where the probabilities are within the
    tolerance of a tie (the rounding of another runtime may break it either way)."""
    if labels.shape != expected.shape:
        return False
    if proba.shape == expected.shape:  # multi-label: each label on its own
        decided = np.abs(proba - 0.5) > TOLERANCE
    else:
        top = np.sort(proba, axis=1)
        decided = top[:, -1] - top[:, -2] > TOLERANCE
    return bool(np.array_equal(labels[decided], expected[decided]))


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"
