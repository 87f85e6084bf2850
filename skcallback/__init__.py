"""skcallback: scikit-learn estimators trained by a PyTorch loop with callbacks."""

from ._classifier import NeuralClassifier
from ._context import Context
from ._export import export
from ._loading import pad_sequences
from ._lr_find import LRFinderResult, lr_find
from ._params import InvalidParameterError
from ._regressor import NeuralRegressor
from ._saving import load, save
from ._slicing import SliceDataset, SliceDict
from .callbacks._base import Callback

__version__ = "0.1.0"

__all__ = [
    "Callback",
    "Context",
    "InvalidParameterError",
    "LRFinderResult",
    "NeuralClassifier",
    "NeuralRegressor",
    "SliceDataset",
    "SliceDict",
    "__version__",
    "export",
    "load",
    "lr_find",
    "pad_sequences",
    "save",
]
