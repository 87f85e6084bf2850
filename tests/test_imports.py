"""What ``import skcallback`` costs: modules a process that only loads and
predicts never uses are imported when first needed."""

import subprocess
import sys

import pytest

#: Heavy modules the import does not need: scikit-learn's metrics (0.1-0.2 s,
#: through sklearn.model_selection, which a fit's validation split imports)
#: and torch's compiler front end (1-1.5 s with sympy).
AVOIDED = ("sklearn.metrics", "sklearn.model_selection", "torch._dynamo", "sympy")


@pytest.mark.parametrize("statement", ["import skcallback", "import skcallback.callbacks"])
def test_import_leaves_heavy_modules_for_later(statement):
    code = f"import sys\n{statement}\nprint(sorted(m for m in {AVOIDED!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_every_public_callback_is_importable_by_name():
    import skcallback.callbacks as callbacks

    for name in callbacks.__all__:
        assert getattr(callbacks, name) is not None
    assert "EpochScoring" in dir(callbacks)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        callbacks.Nope  # noqa: B018
