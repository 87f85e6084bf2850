"""Built-in callbacks."""

from ._base import HOOKS, Callback
from ._history import History
from ._lambda import LambdaCallback
from ._logging import PrintLog, ProgressBar

__all__ = [
    "HOOKS",
    "Callback",
    "History",
    "LambdaCallback",
    "PrintLog",
    "ProgressBar",
]
