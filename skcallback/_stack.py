"""Where a warning should point: the user's line, not the library's."""

from __future__ import annotations

import os
import sys

import joblib
import sklearn

#: Folders whose frames a warning skips: skcallback's, and those of the
#: scikit-learn meta-estimators (and joblib's runs) that may call a fit.
_LIBRARIES = tuple(
    os.path.dirname(module.__file__) + os.sep
    for module in (sys.modules[__package__], sklearn, joblib)
    if module.__file__ is not None
)


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a ``warnings.warn`` in the caller point
    at the first frame outside skcallback, scikit-learn and joblib: the
    line of the user's code that started the fit (or the outermost frame)."""
    frame = sys._getframe(1)  # the caller, which warns: stacklevel 1
    level = 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_LIBRARIES):
        frame = frame.f_back
        level += 1
    return level
