"""The docstrings the reference is built from: their Examples run as written
(doctest), every parameter is documented, and no reST role is left for the
docs to show verbatim."""

import doctest
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import skcallback
import skcallback.callbacks
import skcallback.estimator_checks
from skcallback.callbacks import HOOKS

MODULES = sorted(name for _, name, _ in pkgutil.walk_packages(skcallback.__path__, "skcallback."))
# Optional extras an example may need; without them it is skipped, not failed.
OPTIONAL = {"optuna", "tensorboard", "mlflow", "pandas", "matplotlib", "tqdm"}


def _doctests() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    found = []
    for name in MODULES:
        module = importlib.import_module(name)
        found += [test for test in finder.find(module, name) if test.examples]
    return sorted(found, key=lambda test: test.name)


DOCTESTS = _doctests()


class _Runner(doctest.DocTestRunner):
    """Records an example that failed only because an optional extra is missing."""

    missing: str | None = None

    def report_unexpected_exception(self, out, test, example, exc_info):
        exc = exc_info[1]
        if isinstance(exc, ImportError) and (
            exc.name in OPTIONAL or "from skcallback's" in str(exc)
        ):
            self.missing = str(exc)
        super().report_unexpected_exception(out, test, example, exc_info)


# mlflow's SQLite store (MlflowLogger's example) uses a deprecated SQLAlchemy loader.
@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")
@pytest.mark.parametrize("test", DOCTESTS, ids=[test.name for test in DOCTESTS])
def test_docstring_examples_run(test, tmp_path, monkeypatch):
    if all(example.options.get(doctest.SKIP) for example in test.examples):
        pytest.skip("every example is marked +SKIP")
    monkeypatch.chdir(tmp_path)  # files an example writes stay out of the checkout
    runner = _Runner(optionflags=doctest.ELLIPSIS)
    report: list[str] = []
    result = runner.run(test, out=report.append)
    if result.failed and runner.missing is not None:
        pytest.skip(f"needs an optional extra: {runner.missing}")
    assert not result.failed, "".join(report)


def test_the_examples_asked_for_are_there():
    names = {test.name.rsplit(".", 1)[-1] for test in DOCTESTS}
    wanted = {"EarlyStopping", "Checkpoint", "EpochScoring", "CSVLogger", "TensorBoardLogger"}
    assert wanted | {"MlflowLogger", "NeuralRegressor", "NeuralClassifier"} <= names


# -- every parameter documented ---------------------------------------------
def _documented(doc: str | None) -> set[str]:
    """The names in the numpydoc Parameters section of ``doc``."""
    lines = inspect.cleandoc(doc or "").splitlines()
    names: set[str] = set()
    inside = False
    for number, line in enumerate(lines):
        underline = number + 1 < len(lines) and set(lines[number + 1].strip()) == {"-"}
        if underline:
            inside = line.strip() == "Parameters"
            continue
        if inside and line and not line.startswith(" ") and set(line) != {"-"}:
            head = line.split(" : ")[0].rstrip("\\")
            names.update(name.strip() for name in head.split(","))
    return names


def _parameters(function) -> set[str]:
    names = set()
    for p in inspect.signature(function).parameters.values():
        if p.name in ("self", "cls"):
            continue
        prefix = {p.VAR_KEYWORD: "**", p.VAR_POSITIONAL: "*"}.get(p.kind, "")
        names.add(prefix + p.name)
    return names


def _public_api():
    for module in (skcallback, skcallback.callbacks, skcallback.estimator_checks):
        names = getattr(module, "__all__", None) or [
            n for n, v in vars(module).items() if inspect.isfunction(v) and not n.startswith("_")
        ]
        for name in names:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                yield f"{module.__name__}.{name}", obj


def _documentable():
    """(name, docstring, callable) for each public class's constructor, each
    public method with a docstring of its own (the hooks excepted: they all
    take the context, as the Callback docstring says), and each function."""
    for qualname, obj in _public_api():
        if inspect.isfunction(obj):
            yield qualname, obj.__doc__, obj
            continue
        # The loop builds the Context; exceptions take a message.
        constructed = obj.__init__ is not object.__init__
        if constructed and obj is not skcallback.Context and not issubclass(obj, Exception):
            yield qualname, obj.__doc__, obj.__init__
        seen: set[str] = set()
        for klass in obj.__mro__:  # inherited methods too, as the reference shows them
            if not klass.__module__.startswith("skcallback"):
                continue
            for attr, member in vars(klass).items():
                function = member.__func__ if isinstance(member, classmethod) else member
                if attr.startswith("_") or attr in HOOKS or not inspect.isfunction(function):
                    continue
                if attr not in seen and function.__doc__:
                    seen.add(attr)
                    yield f"{qualname}.{attr}", function.__doc__, function


# Each docstring once, under the first public name it has (an inherited
# method is checked where it is defined).
DOCUMENTABLE = sorted(
    {(id(item[2]), item[1]): item for item in reversed(list(_documentable()))}.values(),
    key=lambda item: item[0],
)


@pytest.mark.parametrize(
    ("name", "doc", "function"), DOCUMENTABLE, ids=[item[0] for item in DOCUMENTABLE]
)
def test_every_parameter_is_documented(name, doc, function):
    missing = _parameters(function) - _documented(doc)
    assert not missing, f"{name} does not document {sorted(missing)} under Parameters"


def test_the_classifier_documents_its_own_parameters():
    regressor = _documented(skcallback.NeuralRegressor.__doc__)
    assert _documented(skcallback.NeuralClassifier.__doc__) == regressor | {"class_weight"}
    assert "CrossEntropyLoss" in skcallback.NeuralClassifier.__doc__
    assert "stratified" in skcallback.NeuralClassifier.__doc__


# -- no reST roles ------------------------------------------------------------
def test_no_rest_roles_in_the_sources():
    """mkdocstrings renders Markdown: a Sphinx role shows as written. Use
    [`Name`][skcallback.Name] cross-references or backticks."""
    role = re.compile(r":(?:class|meth|func|attr|data|mod|obj|ref|exc):`")
    found = [
        f"{path.relative_to(Path(skcallback.__file__).parent)}:{number}"
        for path in sorted(Path(skcallback.__file__).parent.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if role.search(line)
    ]
    assert not found, f"reST roles in {found}"
