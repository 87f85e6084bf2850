"""Built-in callbacks.

Every built-in is clonable and picklable; what it learns during a fit lives in
attributes ending in ``_`` and is returned by ``state_dict()``.
"""

from ._base import HOOKS, PREDICT_HOOKS, Callback
from ._batch_scoring import BatchScoring
from ._checkpoint import (
    Checkpoint,
    atomic_save,
    checkpoint_files,
    read_checkpoint,
    save_checkpoint,
)
from ._control import GradientClipping, TerminateOnNaN, TimeLimit
from ._early_stopping import EarlyStopping
from ._finetune import Freezer, Initializer
from ._history import History
from ._integrations import MlflowLogger, OptunaPruning, TensorBoardLogger
from ._lambda import LambdaCallback
from ._load_weights import LoadWeights
from ._logging import CSVLogger, LossMonitor, MetricLogger, PrintLog, ProgressBar, TimeMonitor
from ._monitor import Monitor
from ._scheduler import LRScheduler
from ._scoring import EpochScoring
from ._weight_averaging import WeightAveraging

__all__ = [
    "HOOKS",
    "PREDICT_HOOKS",
    "BatchScoring",
    "CSVLogger",
    "Callback",
    "Checkpoint",
    "EarlyStopping",
    "EpochScoring",
    "Freezer",
    "GradientClipping",
    "History",
    "Initializer",
    "LRScheduler",
    "LambdaCallback",
    "LoadWeights",
    "LossMonitor",
    "MetricLogger",
    "MlflowLogger",
    "Monitor",
    "OptunaPruning",
    "PrintLog",
    "ProgressBar",
    "TensorBoardLogger",
    "TerminateOnNaN",
    "TimeLimit",
    "TimeMonitor",
    "WeightAveraging",
    "atomic_save",
    "checkpoint_files",
    "read_checkpoint",
    "save_checkpoint",
]
