"""Other frameworks' hook names, and which of ours each one is.

One table, read by the unknown-hook error (a callback ported from
MindSpore that defines ``on_train_step_end`` is told to write
``on_train_batch_end``) and rendered into ``docs/frameworks.md`` (a test
checks the page against it). It covers every hook of the four seed
frameworks (MXNet's R callbacks, luz, MindSpore, mlr3torch) and of Keras,
Lightning and skorch.

Some names are ours too with another moment (``on_train_begin`` runs once
per training in MindSpore, Keras, Lightning and skorch, once per epoch
here): the error cannot catch those, so the table's note says it, and the
porting traps of the docs show it.
"""

from __future__ import annotations

from typing import NamedTuple


class HookName(NamedTuple):
    """A framework's hook and ours: ``ours`` is a hook of
    [`HOOKS`][skcallback.callbacks.HOOKS], or None when there is no
    equivalent (``note`` says why)."""

    framework: str
    name: str
    ours: str | None
    note: str = ""


_ONCE = "once per training; here on_train_* open and close each epoch's training phase"
_AFTER_VALID = "here it runs after validation, with every metric of the epoch in ctx.metrics"
_BOTH_PHASES = "here it fires in training and validation batches: read ctx.phase"
_NO_TEST = "there is no test loop: score() and predict() fire the on_predict_* hooks"

HOOK_NAMES: tuple[HookName, ...] = (
    # MXNet (R): callbacks are arguments of mx.model.FeedForward.create.
    HookName("MXNet (R)", "batch.end.callback", "on_train_batch_end"),
    HookName("MXNet (R)", "epoch.end.callback", "on_epoch_end", _AFTER_VALID),
    # luz breakpoints: the same names, except the ones inside a batch.
    *(
        HookName("luz", name, name)
        for name in (
            "on_fit_begin",
            "on_epoch_begin",
            "on_train_begin",
            "on_train_batch_begin",
            "on_train_batch_end",
            "on_train_end",
            "on_valid_begin",
            "on_valid_batch_begin",
            "on_valid_batch_end",
            "on_valid_end",
            "on_epoch_end",
            "on_fit_end",
        )
    ),
    HookName("luz", "on_train_batch_after_pred", "on_after_forward", _BOTH_PHASES),
    HookName("luz", "on_train_batch_after_loss", "on_after_loss", _BOTH_PHASES),
    HookName("luz", "on_train_batch_before_backward", "on_before_backward"),
    HookName("luz", "on_train_batch_before_step", "on_before_step"),
    HookName("luz", "on_train_batch_after_step", "on_after_step"),
    HookName("luz", "on_valid_batch_after_pred", "on_after_forward", _BOTH_PHASES),
    HookName("luz", "on_valid_batch_after_loss", "on_after_loss", _BOTH_PHASES),
    # MindSpore's Callback (and its older names without "on_").
    HookName("MindSpore", "on_train_begin", "on_fit_begin", _ONCE),
    HookName("MindSpore", "on_train_epoch_begin", "on_epoch_begin"),
    HookName("MindSpore", "on_train_step_begin", "on_train_batch_begin"),
    HookName("MindSpore", "on_train_step_end", "on_train_batch_end"),
    HookName("MindSpore", "on_train_epoch_end", "on_epoch_end", _AFTER_VALID),
    HookName("MindSpore", "on_train_end", "on_fit_end", _ONCE + "; it also runs after a failure"),
    HookName("MindSpore", "on_eval_begin", "on_valid_begin"),
    HookName("MindSpore", "on_eval_epoch_begin", "on_valid_begin"),
    HookName("MindSpore", "on_eval_step_begin", "on_valid_batch_begin"),
    HookName("MindSpore", "on_eval_step_end", "on_valid_batch_end"),
    HookName("MindSpore", "on_eval_epoch_end", "on_valid_end"),
    HookName("MindSpore", "on_eval_end", "on_valid_end"),
    HookName("MindSpore", "begin", "on_fit_begin"),
    HookName("MindSpore", "epoch_begin", "on_epoch_begin"),
    HookName("MindSpore", "step_begin", "on_train_batch_begin"),
    HookName("MindSpore", "step_end", "on_train_batch_end"),
    HookName("MindSpore", "epoch_end", "on_epoch_end", _AFTER_VALID),
    HookName("MindSpore", "end", "on_fit_end", "it also runs after a failure"),
    # mlr3torch's stages (mlr_reflections$torch$callback_stages).
    HookName("mlr3torch", "on_begin", "on_fit_begin"),
    HookName("mlr3torch", "on_epoch_begin", "on_epoch_begin"),
    HookName("mlr3torch", "on_batch_begin", "on_train_batch_begin"),
    HookName("mlr3torch", "on_after_backward", "on_after_backward"),
    HookName("mlr3torch", "on_batch_end", "on_train_batch_end"),
    HookName(
        "mlr3torch",
        "on_before_valid",
        "on_train_end",
        "every epoch, after the training batches, whether or not the epoch validates "
        "(on_valid_begin fires only when it does)",
    ),
    HookName("mlr3torch", "on_batch_valid_begin", "on_valid_batch_begin"),
    HookName("mlr3torch", "on_batch_valid_end", "on_valid_batch_end"),
    HookName("mlr3torch", "on_valid_end", "on_valid_end"),
    HookName("mlr3torch", "on_epoch_end", "on_epoch_end"),
    HookName(
        "mlr3torch",
        "on_end",
        "on_fit_end",
        "on_end runs only after a successful training: test ctx.exception is None",
    ),
    HookName("mlr3torch", "on_exit", "on_fit_end", "it runs after a failure too, as on_exit"),
    # Keras's Callback.
    HookName("Keras", "on_train_begin", "on_fit_begin", _ONCE),
    HookName("Keras", "on_train_end", "on_fit_end", _ONCE + "; it also runs after a failure"),
    HookName("Keras", "on_epoch_begin", "on_epoch_begin"),
    HookName("Keras", "on_epoch_end", "on_epoch_end"),
    HookName("Keras", "on_train_batch_begin", "on_train_batch_begin"),
    HookName("Keras", "on_train_batch_end", "on_train_batch_end"),
    HookName("Keras", "on_batch_begin", "on_train_batch_begin"),
    HookName("Keras", "on_batch_end", "on_train_batch_end"),
    HookName("Keras", "on_test_begin", "on_valid_begin", "Keras's validation runs its test loop"),
    HookName("Keras", "on_test_end", "on_valid_end", "Keras's validation runs its test loop"),
    HookName("Keras", "on_test_batch_begin", "on_valid_batch_begin"),
    HookName("Keras", "on_test_batch_end", "on_valid_batch_end"),
    HookName("Keras", "on_predict_begin", "on_predict_begin"),
    HookName("Keras", "on_predict_end", "on_predict_end"),
    HookName("Keras", "on_predict_batch_begin", "on_predict_batch_begin"),
    HookName("Keras", "on_predict_batch_end", "on_predict_batch_end"),
    # Lightning's Callback.
    HookName("Lightning", "setup", None, "Callback.setup(plan) checks the fit before training"),
    HookName("Lightning", "teardown", "on_fit_end"),
    HookName("Lightning", "on_fit_start", "on_fit_begin"),
    HookName("Lightning", "on_fit_end", "on_fit_end"),
    HookName(
        "Lightning",
        "on_sanity_check_start",
        None,
        "no sanity check: the fit checks the module, loss and callbacks on the first rows "
        "before training",
    ),
    HookName(
        "Lightning",
        "on_sanity_check_end",
        None,
        "no sanity check: the fit checks the module, loss and callbacks on the first rows "
        "before training",
    ),
    HookName("Lightning", "on_train_start", "on_fit_begin", _ONCE),
    HookName("Lightning", "on_train_end", "on_fit_end", _ONCE),
    HookName("Lightning", "on_train_epoch_start", "on_epoch_begin"),
    HookName("Lightning", "on_train_epoch_end", "on_epoch_end", _AFTER_VALID),
    HookName("Lightning", "on_train_batch_start", "on_train_batch_begin"),
    HookName("Lightning", "on_train_batch_end", "on_train_batch_end"),
    HookName("Lightning", "on_validation_start", "on_valid_begin"),
    HookName("Lightning", "on_validation_end", "on_valid_end"),
    HookName("Lightning", "on_validation_epoch_start", "on_valid_begin"),
    HookName("Lightning", "on_validation_epoch_end", "on_valid_end"),
    HookName("Lightning", "on_validation_batch_start", "on_valid_batch_begin"),
    HookName("Lightning", "on_validation_batch_end", "on_valid_batch_end"),
    *(
        HookName("Lightning", f"on_test_{part}", None, _NO_TEST)
        for part in ("start", "end", "epoch_start", "epoch_end", "batch_start", "batch_end")
    ),
    HookName("Lightning", "on_predict_start", "on_predict_begin"),
    HookName("Lightning", "on_predict_end", "on_predict_end"),
    HookName("Lightning", "on_predict_epoch_start", "on_predict_begin"),
    HookName("Lightning", "on_predict_epoch_end", "on_predict_end"),
    HookName("Lightning", "on_predict_batch_start", "on_predict_batch_begin"),
    HookName("Lightning", "on_predict_batch_end", "on_predict_batch_end"),
    HookName("Lightning", "on_exception", "on_exception"),
    HookName("Lightning", "on_before_backward", "on_before_backward"),
    HookName("Lightning", "on_after_backward", "on_after_backward"),
    HookName("Lightning", "on_before_optimizer_step", "on_before_step"),
    HookName(
        "Lightning",
        "on_before_zero_grad",
        "on_after_step",
        "the gradients are still there; the next training batch zeroes them",
    ),
    HookName(
        "Lightning",
        "on_save_checkpoint",
        None,
        "checkpoints save what the callback's state_dict() returns",
    ),
    HookName(
        "Lightning",
        "on_load_checkpoint",
        None,
        "a resumed fit gives each callback its state through load_state_dict(state)",
    ),
    # skorch's Callback.
    HookName("skorch", "initialize", None, "__init__ stores the parameters; setup(plan) checks"),
    HookName("skorch", "on_train_begin", "on_fit_begin", _ONCE),
    HookName("skorch", "on_train_end", "on_fit_end", _ONCE + "; it also runs after a failure"),
    HookName("skorch", "on_epoch_begin", "on_epoch_begin"),
    HookName("skorch", "on_epoch_end", "on_epoch_end"),
    HookName(
        "skorch",
        "on_batch_begin",
        "on_train_batch_begin",
        "skorch's also fires for validation batches (training=False): on_valid_batch_begin",
    ),
    HookName(
        "skorch",
        "on_batch_end",
        "on_train_batch_end",
        "skorch's also fires for validation batches (training=False): on_valid_batch_end",
    ),
    HookName("skorch", "on_grad_computed", "on_after_backward"),
)
"""Every hook of the frameworks skcallback ports from, and ours."""


def porting_hint(name: str) -> str | None:
    """What to write instead of ``name``, another framework's hook that is
    not one of ours, as a sentence; None when no framework has it."""
    by_target: dict[str | None, list[HookName]] = {}
    for entry in HOOK_NAMES:
        if entry.name == name:
            by_target.setdefault(entry.ours, []).append(entry)
    clauses = []
    for ours, entries in by_target.items():
        who = _enumerate([f"{entry.framework}'s" for entry in entries])
        notes = "; ".join(dict.fromkeys(entry.note for entry in entries if entry.note))
        said = f"{who} {name} is {ours!r} here" if ours else f"{who} {name} has no equivalent"
        clauses.append(f"{said} ({notes})" if notes else said)
    return "; ".join(clauses) + "." if clauses else None


def _enumerate(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def markdown_table() -> str:
    """The table as ``docs/frameworks.md`` shows it."""
    rows = ["| framework | its hook | skcallback | note |", "| --- | --- | --- | --- |"]
    for entry in HOOK_NAMES:
        ours = f"`{entry.ours}`" if entry.ours else "none"
        rows.append(f"| {entry.framework} | `{entry.name}` | {ours} | {entry.note} |")
    return "\n".join(rows) + "\n"
