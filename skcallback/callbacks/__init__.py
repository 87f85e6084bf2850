"""Built-in callbacks.

Every built-in is clonable and picklable; what it learns during a fit lives in
attributes ending in ``_`` and is returned by ``state_dict()``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._base import HOOKS, PREDICT_HOOKS, Callback

if TYPE_CHECKING:
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

#: Where each callback lives: a module is imported when one of its names is
#: first asked for, so that ``import skcallback`` (and a fit) does not import
#: what only some callbacks use (scikit-learn's metrics for the scorers).
_MODULES = {
    "BatchScoring": "_batch_scoring",
    "Checkpoint": "_checkpoint",
    "atomic_save": "_checkpoint",
    "checkpoint_files": "_checkpoint",
    "read_checkpoint": "_checkpoint",
    "save_checkpoint": "_checkpoint",
    "GradientClipping": "_control",
    "TerminateOnNaN": "_control",
    "TimeLimit": "_control",
    "EarlyStopping": "_early_stopping",
    "Freezer": "_finetune",
    "Initializer": "_finetune",
    "History": "_history",
    "MlflowLogger": "_integrations",
    "OptunaPruning": "_integrations",
    "TensorBoardLogger": "_integrations",
    "LambdaCallback": "_lambda",
    "LoadWeights": "_load_weights",
    "CSVLogger": "_logging",
    "LossMonitor": "_logging",
    "MetricLogger": "_logging",
    "PrintLog": "_logging",
    "ProgressBar": "_logging",
    "TimeMonitor": "_logging",
    "Monitor": "_monitor",
    "LRScheduler": "_scheduler",
    "EpochScoring": "_scoring",
    "WeightAveraging": "_weight_averaging",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULES})


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
