"""skl2onnx converters for ``NeuralClassifier`` and ``NeuralRegressor``,
registered on import::

    import skcallback.onnx  # noqa: F401
    from skl2onnx import to_onnx

    onx = to_onnx(pipeline, X[:1].astype(np.float32))

A pipeline that ends in a skcallback estimator then converts as one with a
scikit-learn model: the network, traced by torch's ONNX exporter, is spliced
into skl2onnx's graph with its output step. A classifier has skl2onnx's
usual outputs: ``label`` (int64 for integer classes, strings otherwise) and
``probabilities`` (a list of dicts by default; ``options={id(clf):
{"zipmap": False}}`` gives the ``(N, n_classes)`` tensor). A multi-label
classifier's ``label`` is the ``(N, n_labels)`` indicator matrix. A
regressor's ``variable`` is ``(N, n_targets)``, ``(N, 1)`` for a 1-D ``y``,
as skl2onnx gives scikit-learn regressors'. The network must take one 2-D
or higher-rank array (not a dict ``X``: skl2onnx passes one tensor), and be
traceable (see ``skcallback.export``). Needs the ``onnx`` extra (onnx,
onnxruntime, skl2onnx).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._classifier import NeuralClassifier
from ._export import ONNX_OPSET, input_keys, made_rows, onnx_model
from ._extras import import_extra
from ._regressor import NeuralRegressor

_skl2onnx = import_extra("skl2onnx", "onnx", "skcallback.onnx")
_onnx = import_extra("onnx", "onnx", "skcallback.onnx")
_types = _skl2onnx.common.data_types


def _classifier_shapes(operator: Any) -> None:
    """``label`` (int64 or strings) and ``probabilities``, of the input's
    float type, as skl2onnx declares its classifiers' outputs."""
    estimator = operator.raw_operator
    rows = operator.inputs[0].get_first_dimension()
    kind = np.asarray(estimator.classes_).dtype.kind
    if kind in "iub":
        label_type: Any = _types.Int64TensorType
    elif kind in "USO":
        label_type = _types.StringTensorType
    else:
        raise ValueError(
            "skl2onnx gives a classifier's labels as int64 or strings; the classes_ of this "
            f"NeuralClassifier are of dtype {estimator.classes_.dtype}. Fit it on integer or "
            "string labels to convert it."
        )
    width = len(estimator.classes_)
    operator.outputs[0].set_type(label_type([rows, width] if estimator._multilabel else [rows]))
    operator.outputs[1].set_type(_float_type(operator)([rows, width]))


def _regressor_shapes(operator: Any) -> None:
    rows = operator.inputs[0].get_first_dimension()
    operator.outputs[0].set_type(_float_type(operator)([rows, operator.raw_operator.n_outputs_]))


def _float_type(operator: Any) -> Any:
    given = type(operator.inputs[0].type)
    return given if given is _types.DoubleTensorType else _types.FloatTensorType


def _convert(scope: Any, operator: Any, container: Any) -> None:
    """The estimator's network and output step, traced by torch, spliced
    into skl2onnx's graph."""
    estimator = operator.raw_operator
    if input_keys(estimator):
        raise ValueError(
            f"skl2onnx passes a model one tensor; this {type(estimator).__name__} was fitted "
            f"on a dict X (keys {list(input_keys(estimator))}). Export it on its own with "
            "skcallback.export(estimator, path, format='onnx'), which names one input per key."
        )
    opset = min(container.target_opset or ONNX_OPSET, ONNX_OPSET)
    model = onnx_model(estimator, made_rows(estimator), opset, columns=True)
    _splice(scope, operator, container, model.graph, opset)


def _splice(scope: Any, operator: Any, container: Any, graph: Any, opset: int) -> None:
    """Add ``graph``'s initializers and nodes to the container, its input
    read from the operator's input and its outputs written to the
    operator's outputs (cast where their types differ), every other name
    made unique in the scope."""
    names: dict[str, str] = {"": ""}  # an omitted optional input stays omitted

    def rename(name: str) -> str:
        if name not in names:
            names[name] = scope.get_unique_variable_name(name)
        return names[name]

    source, given = operator.inputs[0].full_name, _elem_type(operator.inputs[0])
    wanted = graph.input[0].type.tensor_type.elem_type
    names[graph.input[0].name] = source
    if given != wanted:
        names[graph.input[0].name] = scope.get_unique_variable_name("net_input")
        container.add_node("Cast", [source], [names[graph.input[0].name]], to=wanted)
    for value, variable in zip(graph.output, operator.outputs, strict=True):
        if value.type.tensor_type.elem_type == _elem_type(variable):
            names[value.name] = variable.full_name
        else:  # bool labels, or float32 probabilities of a float64 input
            cast = _elem_type(variable)
            container.add_node("Cast", [rename(value.name)], [variable.full_name], to=cast)
    for tensor in graph.initializer:
        content = _initializer_content(tensor)
        container.add_initializer(rename(tensor.name), tensor.data_type, list(tensor.dims), content)
    for node in graph.node:
        container.add_node(
            node.op_type,
            [rename(name) for name in node.input],
            [rename(name) for name in node.output],
            op_domain=node.domain,
            op_version=opset,
            name=scope.get_unique_operator_name(f"net_{node.op_type}"),
            **{attr.name: _attribute(attr) for attr in node.attribute},
        )


def _elem_type(variable: Any) -> int:
    return int(variable.type.to_onnx_type().tensor_type.elem_type)


def _initializer_content(tensor: Any) -> Any:
    """What ``add_initializer`` takes: strings as a list, numbers as a
    tensor holding them as raw bytes."""
    if tensor.data_type == _onnx.TensorProto.STRING:
        return [value.decode() for value in tensor.string_data]
    return _onnx.numpy_helper.from_array(_onnx.numpy_helper.to_array(tensor))


def _attribute(attr: Any) -> Any:
    if attr.type in (_onnx.AttributeProto.GRAPH, _onnx.AttributeProto.GRAPHS):
        raise ValueError(
            f"The network's ONNX graph has a {attr.name!r} subgraph (control flow), which "
            "skcallback.onnx does not splice into skl2onnx's graph; export the estimator on "
            "its own with skcallback.export."
        )
    return _onnx.helper.get_attribute_value(attr)


_skl2onnx.update_registered_converter(
    NeuralClassifier,
    "SkcallbackNeuralClassifier",
    _classifier_shapes,
    _convert,
    options={"zipmap": [True, False, "columns"], "nocl": [False]},
)
_skl2onnx.update_registered_converter(
    NeuralRegressor, "SkcallbackNeuralRegressor", _regressor_shapes, _convert
)
