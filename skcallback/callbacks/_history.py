"""The ``History`` of a fit."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from .._context import Context
from ._base import Callback, import_extra
from ._monitor import Monitor


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
    lower_is_better_ : dict
        For each recorded metric with a direction, whether lower is better
        (``plot`` marks the best epoch of those, by
        [`Monitor`][skcallback.callbacks.Monitor]'s rule: ties keep the first
        epoch, NaN is never best).

    Notes
    -----
    Memory: one record (a dict of numbers) per epoch.

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
        self.lower_is_better_ = {
            key: lower for key, lower in ctx.plan.metrics.items() if lower is not None
        }

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

        Parameters
        ----------
        key : str
            A recorded key: ``"train_loss"``, ``"valid_loss"``, ``"lr"``,
            ``"dur"``, a score's name, ...
        default : object, default=None
            The value for epochs that did not record ``key``.

        Returns
        -------
        list
            One value per epoch, oldest first (empty before any epoch).

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

        Requires pandas (``pip install pandas``, or ``pip install '.[pandas]'`` in
        a clone of skcallback).

        Returns
        -------
        pandas.DataFrame
            One row per epoch, one column per recorded key.

        Raises
        ------
        ImportError
            If pandas is not installed.
        """
        pd = import_extra("pandas", "pandas", "History.to_dataframe()")
        return pd.DataFrame.from_records(self._records())

    def plot(self, keys: Sequence[str] | None = None, ax: Any = None) -> Any:
        """Plot values per epoch (default: every ``*_loss`` key).

        The best epoch of each metric with a direction (losses, scores) is
        marked with a dot; ``lr`` goes on a second y axis, on the right; the
        epoch axis has whole numbers.

        Requires matplotlib (``pip install matplotlib``, or ``pip install '.[plot]'``
        in a clone of skcallback).

        Parameters
        ----------
        keys : sequence of str, optional
            The recorded values to plot.
        ax : matplotlib.axes.Axes, optional
            Where to draw; a new figure by default.

        Returns
        -------
        matplotlib.axes.Axes
            The axes of the metrics (the ``lr`` axis is its twin).

        Raises
        ------
        ImportError
            If matplotlib is not installed.
        """
        plt = import_extra("matplotlib.pyplot", "plot", "History.plot()")
        from matplotlib.ticker import MaxNLocator

        records = self._records()
        if keys is None:
            # every epoch's keys: the first may not have validated (validate_every)
            keys = [k for k in dict.fromkeys(k for r in records for k in r) if k.endswith("loss")]
        if ax is None:
            _, ax = plt.subplots()
        epochs = self.get("epoch") if records else []
        directions = getattr(self, "lower_is_better_", {})
        rates = [key for key in keys if key == "lr"]
        metrics = [key for key in keys if key != "lr"]
        for key in metrics:
            # the epochs that recorded it (validate_every skips some)
            kept = [(e, v) for e, v in zip(epochs, self.get(key), strict=True) if v is not None]
            epochs_of, values = [e for e, _ in kept], [v for _, v in kept]
            (line,) = ax.plot(epochs_of, values, label=key)
            lower = directions.get(key)
            best = (
                None
                if lower is None
                else Monitor(key, "min" if lower else "max").best_index(values)
            )
            if best is not None:
                ax.plot(
                    epochs_of[best],
                    values[best],
                    "o",
                    color=line.get_color(),
                    label=f"best {key} (epoch {epochs_of[best]})",
                )
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss" if metrics and all(k.endswith("loss") for k in metrics) else "value")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        handles, labels = ax.get_legend_handles_labels()
        if rates:
            lr_ax = ax.twinx() if metrics else ax
            (line,) = lr_ax.plot(epochs, self.get("lr"), "--", color="gray", label="lr")
            lr_ax.set_ylabel("lr")
            if lr_ax is not ax:
                handles, labels = [*handles, line], [*labels, "lr"]
        if handles:
            ax.legend(handles, labels)
        return ax

    def __repr__(self) -> str:
        return f"History(epochs={len(self)})"
