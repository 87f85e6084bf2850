"""Hand-written backpropagation for the built-in MLP: its training step's
forward, loss and backward computed by hand into buffers allocated once per
fit, as scikit-learn's MLP does in NumPy (no fused kernel: matrix products
and element-wise operations of torch).

On small data autograd's bookkeeping costs more than the arithmetic: for
the S benchmark's 64-64 MLP and batches of 128, forward and backward took
about 270 us with autograd and 120 us by hand on the benchmark machine. The
gradients go to each parameter's ``.grad``, so gradient hooks,
clipping and the optimizer step stay the loop's own. The plan uses this
step only where it gives the model autograd would give (``_plan``'s
``choose_fast_path``); the derivatives below are those autograd uses for
the modules of ``_modules.ACTIVATIONS`` with their default arguments.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ._internals import ModuleWatch
from ._modules import ACTIVATIONS, MLP, Dropout

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_LEAKY_SLOPE = 0.01  # nn.LeakyReLU's default negative_slope (nn.ELU's alpha is 1)


class _Activation(NamedTuple):
    """One activation of the fast path.

    ``forward(z, out)`` writes the activation of ``z`` into ``out``, which is
    ``z`` itself unless ``keeps_input``. ``derivative(saved, spare)``
    returns the derivative at each element, computed in place from
    ``saved`` (the output, or the input ``z`` when ``keeps_input``) and
    ``spare`` (the output buffer); both are free to overwrite by then.
    ``derivative`` is None where it is 1.
    """

    forward: Callable[[Tensor, Tensor], object]
    derivative: Callable[[Tensor, Tensor], Tensor] | None
    keeps_input: bool


def _gelu_derivative(z: Tensor, spare: Tensor) -> Tensor:
    """Phi(z) + z phi(z) (the exact, erf form of nn.GELU)."""
    torch.mul(z, z, out=spare).mul_(-0.5).exp_().mul_(z).mul_(_INV_SQRT_2PI)
    return torch.special.ndtr(z, out=z).add_(spare)


def _silu_derivative(z: Tensor, spare: Tensor) -> Tensor:
    """s (1 + z (1 - s)) with s = sigmoid(z)."""
    s = torch.sigmoid(z, out=spare)
    return z.addcmul_(z, s, value=-1).add_(1).mul_(s)


ACTIVATION_STEPS: dict[str, _Activation] = {
    # Derivatives from the output, where h > 0 exactly where z > 0.
    "relu": _Activation(
        lambda z, out: torch.clamp_min(z, 0, out=out), lambda h, _: h.sign_(), False
    ),  # h >= 0: its sign is the derivative
    "tanh": _Activation(
        lambda z, out: torch.tanh(z, out=out), lambda h, _: h.mul_(h).neg_().add_(1), False
    ),
    "logistic": _Activation(
        lambda z, out: torch.sigmoid(z, out=out),
        lambda h, _: torch.addcmul(h, h, h, value=-1, out=h),  # h (1 - h)
        False,
    ),
    "identity": _Activation(lambda z, out: None, None, False),
    # In place: out is z for the activations that keep no input.
    "elu": _Activation(
        lambda z, out: F.elu(z, inplace=True), lambda h, _: h.clamp_max_(0).add_(1), False
    ),
    "leaky_relu": _Activation(
        lambda z, out: F.leaky_relu(z, _LEAKY_SLOPE, inplace=True),
        lambda h, _: h.sign_().clamp_min_(_LEAKY_SLOPE),  # 1 where h > 0, else the slope
        False,
    ),
    # Derivatives from the input.
    "gelu": _Activation(
        lambda z, out: torch.special.ndtr(z, out=out).mul_(z), _gelu_derivative, True
    ),
    "silu": _Activation(lambda z, out: torch.sigmoid(z, out=out).mul_(z), _silu_derivative, True),
}
ACTIVATION_STEPS["sigmoid"] = ACTIVATION_STEPS["logistic"]
assert set(ACTIVATION_STEPS) == set(ACTIVATIONS), "every built-in activation needs a fast step"

#: The criteria the fast path computes by hand.
LOSSES: dict[type[nn.Module], str] = {
    nn.MSELoss: "mse",
    nn.CrossEntropyLoss: "cross_entropy",
    nn.BCEWithLogitsLoss: "bce_with_logits",
}


class _Buffers(NamedTuple):
    """The step's work space: per hidden layer its pre-activation ``pre``,
    activation ``post`` (``pre`` itself unless the derivative needs the
    input), dropout ``masks`` (none without dropout), what it ``passed`` on
    (``post``, or the dropped-out copy) and the gradient wrt its output
    ``grads``; at the output, for the mean squared error and binary
    cross-entropy ``delta`` and ``weighted`` (rows by outputs), for
    cross-entropy ``by_class`` (classes by rows) and ``minus_one`` (a row of
    -1: the one-hot targets' step); and the transposes the step reads, as
    views made once (``transposes``: ``.t()`` costs about 1 us a call)."""

    pre: list[Tensor]
    post: list[Tensor]
    masks: list[Tensor]
    passed: list[Tensor]
    grads: list[Tensor]
    delta: Tensor
    weighted: Tensor
    by_class: Tensor
    minus_one: Tensor
    transposes: _Transposes

    @classmethod
    def allocate(
        cls,
        widths: list[int],
        n_outputs: int,
        batch_size: int,
        like: Tensor,
        activation: _Activation,
        dropout: float,
    ) -> _Buffers:
        """Buffers of ``batch_size`` rows for hidden layers of ``widths`` and
        ``n_outputs`` outputs, of ``like``'s dtype and device."""

        def buffer(width: int) -> Tensor:
            return torch.empty(batch_size, width, dtype=like.dtype, device=like.device)

        pre = [buffer(width) for width in widths]
        post = [buffer(width) for width in widths] if activation.keeps_input else pre
        passed = [buffer(width) for width in widths] if dropout else post
        grads = [buffer(width) for width in widths]
        delta, weighted = buffer(n_outputs), buffer(n_outputs)
        return cls(
            pre=pre,
            post=post,
            masks=[buffer(width) for width in widths] if dropout else [],
            passed=passed,
            grads=grads,
            delta=delta,
            weighted=weighted,
            by_class=buffer(n_outputs).t().contiguous(),
            minus_one=torch.full((1, batch_size), -1.0, dtype=like.dtype, device=like.device),
            transposes=_Transposes.of(passed, grads, delta, weighted),
        )

    def first(self, n: int) -> _Buffers:
        """Views of the first ``n`` rows, for a smaller batch."""

        def rows(tensors: list[Tensor]) -> list[Tensor]:
            return [tensor[:n] for tensor in tensors]

        passed, grads = rows(self.passed), rows(self.grads)
        delta, weighted = self.delta[:n], self.weighted[:n]
        return _Buffers(
            rows(self.pre),
            rows(self.post),
            rows(self.masks),
            passed,
            grads,
            delta,
            weighted,
            self.by_class.view(-1)[: len(self.by_class) * n].view(-1, n),
            self.minus_one[:, :n],
            _Transposes.of(passed, grads, delta, weighted),
        )


class _Transposes(NamedTuple):
    """Transposed views of some ``_Buffers``: of ``passed`` and ``grads``,
    ``delta`` and ``weighted``."""

    passed: list[Tensor]
    grads: list[Tensor]
    delta: Tensor
    weighted: Tensor

    @classmethod
    def of(
        cls, passed: list[Tensor], grads: list[Tensor], delta: Tensor, weighted: Tensor
    ) -> _Transposes:
        return cls([t.t() for t in passed], [t.t() for t in grads], delta.t(), weighted.t())


def _sparse_weight_grad(weight: Tensor, delta: Tensor, X: Tensor, fresh: bool) -> None:
    """The first layer's weight gradient ``delta.T @ X`` from a sparse
    ``X``, computed as ``(X.T @ delta).T`` (sparse @ dense) into a gradient
    laid out as the weight is: torch's product of a dense and a sparse
    matrix returns a transposed layout, which the fused optimizers read
    wrongly (torch 2.13: Adam(fused=True) stepped a non-contiguous
    gradient as if it were contiguous)."""
    if fresh or weight.grad is None:
        grad = torch.empty_like(weight, memory_format=torch.contiguous_format)
        torch.mm(X.t(), delta, out=grad.t())
        weight.grad = grad
    else:
        weight.grad.t().addmm_(X.t(), delta)


class HandwrittenMLPStep:
    """The training step of a built-in ``MLP`` computed by hand.

    Parameters
    ----------
    module : MLP
        The module; its parameters are read and their ``.grad`` written.
    activation : str
        One of ``ACTIVATION_STEPS``.
    dropout : float
        The MLP's dropout probability.
    loss : {"mse", "cross_entropy", "bce_with_logits"}
        The criterion, with mean reduction (per-sample losses times the
        normalised sample weights, when weighted).
    batch_size : int
        The largest batch: buffers hold this many rows, and a smaller
        batch uses views of their first rows.
    generator : torch.Generator
        The fit's dropout generator, which ``_modules.Dropout`` draws from:
        the masks are drawn in the same order and shape, so both paths
        train the same model.
    """

    def __init__(
        self,
        module: MLP,
        *,
        activation: str,
        dropout: float,
        loss: str,
        batch_size: int,
        generator: torch.Generator,
    ) -> None:
        modules = list(module.modules())
        linears = [layer for layer in modules if isinstance(layer, nn.Linear)]
        self.dropouts = [layer for layer in modules if isinstance(layer, Dropout)]
        # The MLP's forward runs its Sequential's layers in turn.
        self.module, self.layers = module, list(module.layers)
        self.parameters = [(layer.weight, layer.bias) for layer in linears]
        # Detached views read the live weights without recording a graph.
        self.weights = [layer.weight.detach() for layer in linears]
        self.weights_t = [weight.t() for weight in self.weights]
        self.biases = [layer.bias.detach() for layer in linears]
        # Cross-entropy computes its output classes by rows (_cross_entropy).
        self.by_class = loss == "cross_entropy"
        self.bias_column = self.biases[-1].unsqueeze(1)
        self.activation = ACTIVATION_STEPS[activation]
        self.keep = 1.0 - dropout
        self.dropout, self.dropout_p = bool(dropout), dropout
        self.generator = generator
        self.loss = {
            "mse": self._mse,
            "cross_entropy": self._cross_entropy,
            "bce_with_logits": self._bce_with_logits,
        }[loss]
        first = self.weights[0]
        n_outputs = linears[-1].out_features
        widths = [layer.out_features for layer in linears[:-1]]
        full = _Buffers.allocate(widths, n_outputs, batch_size, first, self.activation, dropout)
        # Batches have batch_size rows but the last: two sets of views at most.
        self.buffers = {batch_size: full}
        self.full = full
        self.capacity, self.in_features = batch_size, linears[0].in_features
        self.n_outputs, self.dtype, self.device = n_outputs, first.dtype, first.device
        # Class indices for cross-entropy; values of the outputs' shape else.
        self.target_dtype = torch.int64 if loss == "cross_entropy" else first.dtype
        self.target_dims = 1 if loss == "cross_entropy" else 2
        # What the step relies on in the module: its layers, no hooks, each
        # parameter still the tensor it reads (whose storage its views share).
        self.watch = ModuleWatch(
            module,
            [
                (layer, name, view)
                for layer, weight, bias in zip(linears, self.weights, self.biases, strict=True)
                for name, view in (("weight", weight), ("bias", bias))
            ],
            modules,
        )

    def forward(self, X: Tensor) -> Tensor:
        """``module(X)``: each layer's ``forward`` in turn where the watch
        finds the module unchanged and no hook registered, as
        ``nn.Module.__call__`` then does, without its dispatch; else the
        module's call (a validation batch costs a third less)."""
        if not self.watch.unchanged():
            return self.module(X)
        for layer in self.layers:
            X = layer.forward(X)
        return X

    def takes(self, X: Tensor, y: Tensor, w: Tensor | None, *, replaced: bool) -> bool:
        """Whether ``step`` computes this batch as autograd would, checked at
        every batch because callbacks may change what it relies on: the
        module has the layers it had, the dropout layers train with the fit's
        probability, no forward or
        backward hook is registered on the module, its parameters or
        globally (the step runs neither the module nor autograd), the
        parameters are still the tensors the step reads, and nothing needs
        gradients wrt the batch; where a callback ``replaced`` the batch
        (``ctx.X_batch``, ``ctx.y_batch`` or ``ctx.sample_weight_batch``:
        more rows, soft targets), also that it is one the step computes.
        About 3 us; where it says no, the loop trains the batch with
        autograd."""
        return (
            self.watch.unchanged()
            and all(layer.training and layer.p == self.dropout_p for layer in self.dropouts)
            and not X.requires_grad
            and (not replaced or self._batch_fits(X, y, w))
        )

    def _batch_fits(self, X: Tensor, y: Tensor, w: Tensor | None) -> bool:
        """Whether a batch a callback made is one the step computes: shaped
        and typed as the fit's own, no gradient wanted, class targets in
        range (cross-entropy's ignored index is autograd's to handle)."""
        n = X.shape[0] if X.dim() == 2 else 0
        return (
            0 < n <= self.capacity
            and X.shape[1] == self.in_features
            and X.dtype == self.dtype
            and X.device == self.device
            and y.dim() == self.target_dims
            and y.shape[0] == n
            and (self.target_dims == 1 or y.shape[1] == self.n_outputs)
            and y.dtype == self.target_dtype
            and not y.requires_grad
            and (self.target_dims == 2 or 0 <= int(y.min()) <= int(y.max()) < self.n_outputs)
            and (w is None or (w.shape == (n,) and w.dtype == self.dtype and not w.requires_grad))
        )

    def step(
        self, X: Tensor, y: Tensor, w: Tensor | None, share: float, *, fresh: bool
    ) -> tuple[Tensor, Tensor]:
        """Forward, loss and backward of one training batch.

        Parameters
        ----------
        X, y, w : torch.Tensor
            The batch (``w``: normalised sample weights, or None).
        share : float
            The factor of this batch's gradient (its share of the rows of an
            accumulation window; 1.0 without accumulation).
        fresh : bool
            Whether the gradients replace ``.grad`` (a new window) or are
            added to it.

        Returns
        -------
        output : torch.Tensor
            The module's output, a new tensor (hooks may keep it).
        loss : torch.Tensor
            The batch's loss, 0-d, not scaled by ``share``.
        """
        n = X.shape[0]
        buffers = self.buffers.get(n)
        if buffers is None:
            buffers = self.buffers[n] = self.full.first(n)
        inputs = self._forward(X, buffers)
        if self.by_class and buffers.passed:  # the output's transpose, contiguous
            logits = torch.addmm(self.bias_column, self.weights[-1], buffers.transposes.passed[-1])
            loss, delta, delta_t = self.loss(logits, y, w, buffers, share)
            output = logits.t()
        elif self.by_class:  # a linear model: X may be sparse (sparse @ dense)
            output = torch.addmm(self.biases[-1], X, self.weights_t[-1])
            loss, delta, delta_t = self.loss(output.t(), y, w, buffers, share)
        else:
            output = torch.addmm(self.biases[-1], inputs[-1], self.weights_t[-1])
            loss, delta, delta_t = self.loss(output, y, w, buffers, share)
        self._backward(inputs, (delta, delta_t), buffers, fresh)
        return output, loss

    def _forward(self, X: Tensor, buffers: _Buffers) -> list[Tensor]:
        """Each layer's input: ``X``, then what each hidden layer passes on."""
        inputs = [X]
        for i, z in enumerate(buffers.pre):
            torch.addmm(self.biases[i], inputs[-1], self.weights_t[i], out=z)
            h = buffers.post[i]
            self.activation.forward(z, h)
            if self.dropout:
                mask = buffers.masks[i].bernoulli_(self.keep, generator=self.generator)
                h = torch.mul(h, mask, out=buffers.passed[i]).div_(self.keep)
            inputs.append(h)
        return inputs

    def _backward(
        self, inputs: list[Tensor], deltas: tuple[Tensor, Tensor], buffers: _Buffers, fresh: bool
    ) -> None:
        """Gradients from ``deltas``: the loss's gradient wrt the output, and
        its transpose."""
        derivative = self.activation.derivative
        delta, delta_t = deltas
        for i in reversed(range(len(self.weights))):
            weight, bias = self.parameters[i]
            # New tensors, as autograd gives (a hook may keep one; reusing
            # buffers measured no faster); none for a frozen parameter.
            if not weight.requires_grad:  # frozen: no gradient, as zero_grad leaves it
                if fresh:
                    weight.grad = None
            elif inputs[i].layout != torch.strided:  # a sparse X, at the first layer
                _sparse_weight_grad(weight, delta, inputs[i], fresh)
            elif fresh or weight.grad is None:
                weight.grad = torch.mm(delta_t, inputs[i])
            else:
                weight.grad.addmm_(delta_t, inputs[i])
            if not bias.requires_grad:
                if fresh:
                    bias.grad = None
            elif fresh or bias.grad is None:
                bias.grad = delta.sum(0)
            else:
                bias.grad.add_(delta.sum(0))
            if i == 0:
                return
            # The layer's input is not needed after its weight's gradient:
            # the derivative may overwrite it.
            grad = torch.mm(delta, self.weights[i], out=buffers.grads[i - 1])
            if self.dropout:
                grad.div_(self.keep).mul_(buffers.masks[i - 1])
            if derivative is not None:
                grad.mul_(derivative(buffers.pre[i - 1], buffers.post[i - 1]))
            delta, delta_t = grad, buffers.transposes.grads[i - 1]

    def _mse(
        self, output: Tensor, y: Tensor, w: Tensor | None, buffers: _Buffers, share: float
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Mean squared error over every element (weighted: each sample's
        mean over its targets, times its weight), its gradient and the
        gradient's transpose."""
        diff = torch.sub(output, y, out=buffers.delta)
        scale = 1.0 / diff.numel()
        if w is None:
            scaled, scaled_t = diff, buffers.transposes.delta
        else:
            scaled = torch.mul(diff, w.unsqueeze(1), out=buffers.weighted)
            scaled_t = buffers.transposes.weighted
        loss = torch.dot(scaled.view(-1), diff.view(-1)).mul_(scale)
        return loss, scaled.mul_(2.0 * scale * share), scaled_t

    def _bce_with_logits(
        self, output: Tensor, y: Tensor, w: Tensor | None, buffers: _Buffers, share: float
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Binary cross-entropy of each logit against its 0/1 (or soft)
        target, mean over every element (weighted: each sample's mean over
        its labels times its weight), its gradient ``(sigmoid - y) / n
        / n_labels`` (times the weights) and the gradient's transpose."""
        weight = None if w is None else w.unsqueeze(1)
        loss = F.binary_cross_entropy_with_logits(output, y, weight)
        delta = torch.sigmoid(output, out=buffers.delta).sub_(y)
        if weight is not None:
            delta.mul_(weight)
        return loss, delta.mul_(share / delta.numel()), buffers.transposes.delta

    def _cross_entropy(
        self, logits: Tensor, y: Tensor, w: Tensor | None, buffers: _Buffers, share: float
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Cross-entropy of ``logits``, classes by rows, against class
        indices (weighted: each sample's times its weight), mean over
        samples, its gradient ``softmax - one_hot`` (a transposed view) and
        the gradient's transpose.

        Classes by rows, contiguous (``step`` computes the logits so): over a
        few classes, torch's softmax along the first dimension of a
        contiguous tensor takes a quarter to a half of the time it takes
        along the last, or along the first of a transposed one (measured: 5
        us against 9 to 21 us for 128 rows of 10 classes)."""
        n = logits.shape[1]
        log_p = torch.log_softmax(logits, 0, out=buffers.by_class)
        target = y.unsqueeze(0)
        picked = log_p.gather(0, target)
        loss = (picked.sum() if w is None else torch.dot(picked.view(-1), w)).div_(-n)
        delta = log_p.exp_().scatter_add_(0, target, buffers.minus_one)
        if w is not None:
            delta.mul_(w)
        delta.mul_(share / n)
        return loss, delta.t(), delta
