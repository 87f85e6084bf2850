"""The :class:`History` of a fit."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from .._context import Context
from ._base import Callback, import_extra


class History(Callback):
    """The per-epoch records of a fit; always present and first.

    Each record is a dict with ``epoch``, ``lr``, ``train_loss``,
    ``valid_loss`` (when validating), ``dur`` (seconds) and every score other
    callbacks add to ``ctx.metrics`` during the epoch. The history is a
    sequence of these records and continues across warm starts.

    Attributes
    ----------
    records_ : list of dict
        One record per epoch, oldest first.

    Examples
    --------
    >>> from skcallback import NeuralRegressor
    >>> import numpy as np
    >>> X, y = np.random.RandomState(0).rand(40, 3), np.arange(40.0)
    >>> est = NeuralRegressor(max_epochs=3, random_state=0).fit(X, y)
    >>> len(est.history_), est.history_[-1]["epoch"]
    (3, 3)
    >>> len(est.history_.get("train_loss"))
    3
    """

    order = float("-inf")

    def on_fit_begin(self, ctx: Context) -> None:
        if not hasattr(self, "records_"):
            self.records_: list[dict[str, Any]] = []

    def load_state_dict(self, state: dict[str, Any]) -> None:
        records = state.get("records_", [])
        if not (isinstance(records, list) and all(isinstance(r, dict) for r in records)):
            raise ValueError("History state: records_ must be a list of per-epoch dicts.")
        super().load_state_dict(state)

    def on_epoch_begin(self, ctx: Context) -> None:
        # The loop keeps filling this dict during the epoch.
        self.records_.append(ctx.metrics)

    # -- the sequence of records ----------------------------------------
    def _records(self) -> list[dict[str, Any]]:
        return getattr(self, "records_", [])

    def __len__(self) -> int:
        return len(self._records())

    def __getitem__(self, index: int | slice) -> Any:
        return self._records()[index]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._records())

    def get(self, key: str, default: Any = None) -> list[Any]:
        """The values of ``key``, one per epoch (``default`` where missing).

        Raises
        ------
        KeyError
            If no epoch recorded ``key``.
        """
        records = self._records()
        if records and not any(key in record for record in records):
            known = sorted({k for record in records for k in record})
            raise KeyError(f"No epoch recorded {key!r}; recorded keys are {known}.")
        return [record.get(key, default) for record in records]

    def to_dataframe(self) -> Any:
        """The history as a pandas DataFrame, one row per epoch.

        Requires pandas (``pip install skcallback[pandas]``).
        """
        pd = import_extra("pandas", "pandas", "History.to_dataframe()")
        return pd.DataFrame.from_records(self._records())

    def plot(self, keys: Sequence[str] | None = None, ax: Any = None) -> Any:
        """Plot values per epoch (default: every ``*_loss`` key).

        Requires matplotlib (``pip install skcallback[plot]``).

        Returns
        -------
        matplotlib.axes.Axes
        """
        plt = import_extra("matplotlib.pyplot", "plot", "History.plot()")
        records = self._records()
        if keys is None:
            keys = [k for k in (records[0] if records else {}) if k.endswith("loss")]
        if ax is None:
            _, ax = plt.subplots()
        epochs = self.get("epoch") if records else []
        for key in keys:
            ax.plot(epochs, self.get(key), label=key)
        ax.set_xlabel("epoch")
        ax.legend()
        return ax

    def __repr__(self) -> str:
        return f"History(epochs={len(self)})"
