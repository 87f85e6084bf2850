"""The callbacks a fit has without being given them.

The estimator's core asks this module instead of naming built-in callbacks:
which are always present (and which estimator attribute exposes each fitted
one), and which a ``verbose`` level adds.
"""

from __future__ import annotations

from ._base import Callback
from ._history import History
from ._logging import PrintLog, ProgressBar

#: Callbacks every fit has, by name: their class (a replacement under the
#: name must be one) and the estimator attribute that exposes the fitted
#: callback. They cannot be disabled.
ALWAYS_PRESENT: dict[str, tuple[type[Callback], str]] = {
    "history": (History, "history_"),
}

#: Callbacks a ``verbose`` level adds, by name: the least level and the class.
VERBOSE: dict[str, tuple[int, type[Callback]]] = {
    "print_log": (1, PrintLog),
    "progress_bar": (2, ProgressBar),
}


Named = list[tuple[str, Callback]]


def default_callbacks(verbose: int, given: set[str]) -> tuple[Named, Named]:
    """The callbacks to add to those ``given`` (by name) for a fit at this
    ``verbose`` level.

    Returns
    -------
    first, last : list of (name, Callback)
        New instances: those always present (placed before the given ones)
        and those ``verbose`` adds (after them); none whose name is given.
    """
    first: Named = [(name, cls()) for name, (cls, _) in ALWAYS_PRESENT.items() if name not in given]
    last: Named = [
        (name, cls())
        for name, (level, cls) in VERBOSE.items()
        if verbose >= level and name not in given
    ]
    return first, last
