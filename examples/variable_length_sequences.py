"""A GRU classifier on sequences of different lengths, padded by
``pad_sequences`` and packed in the module.

The data: sequences of 3 to 20 steps of 2 features (made up here). A
sequence's class is 1 when the mean of its first feature is positive: the
whole sequence counts, and only the sequence, not its padding.

1. ``X`` is a list of arrays of shape ``(length, 2)``, ``y`` one label per
   sequence. With ``dataloader__collate_fn=skcallback.pad_sequences``, each
   batch is padded to its longest sequence and the module is called as
   ``module(padded, lengths)``.
2. ``GRUClassifier.forward`` packs the padded batch
   (``pack_padded_sequence(..., enforce_sorted=False)``), so the GRU stops
   at each sequence's last real step and never reads the padding.
3. Predictions therefore do not depend on what a sequence is batched
   with: predicted alone, or in a batch padded to a longer sequence, the
   probabilities are the same.

Run ``python examples/variable_length_sequences.py``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from skcallback import NeuralClassifier, pad_sequences


class GRUClassifier(nn.Module):
    """A GRU over the packed sequences; its last hidden state gives the logits."""

    def __init__(self, n_outputs: int, n_features: int = 2, hidden: int = 16) -> None:
        super().__init__()
        self.gru = nn.GRU(n_features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, n_outputs)

    def forward(self, padded: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # padded: (batch, longest, n_features); lengths: (batch,) int64 on the CPU
        packed = nn.utils.rnn.pack_padded_sequence(
            padded, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        _, last = self.gru(packed)  # last: (1, batch, hidden), at each sequence's own end
        return self.head(last[-1])


def load_data(n: int = 400, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    sequences = [rng.normal(size=(rng.integers(3, 21), 2)).astype(np.float32) for _ in range(n)]
    labels = np.array([int(s[:, 0].mean() > 0) for s in sequences])
    return sequences, labels


def make_model(**params) -> NeuralClassifier:
    return NeuralClassifier(
        module=GRUClassifier,
        lr=1e-2,
        max_epochs=20,
        random_state=0,
        dataloader__collate_fn=pad_sequences,
    ).set_params(**params)


def main() -> dict:
    sequences, labels = load_data()
    train, test = slice(0, 300), slice(300, None)
    lengths = [len(s) for s in sequences]
    print(f"{len(sequences)} sequences of {min(lengths)} to {max(lengths)} steps")
    model = make_model().fit(sequences[train], labels[train])
    print(f"test accuracy {model.score(sequences[test], labels[test]):.3f}")
    short = min(range(300, 400), key=lambda i: lengths[i])
    longest = max(range(300, 400), key=lambda i: lengths[i])
    alone = model.predict_proba([sequences[short]])[0]
    padded = model.predict_proba([sequences[short], sequences[longest]])[0]
    print(
        f"a sequence of {lengths[short]} steps, predicted alone: {np.round(alone, 4).tolist()}; "
        f"beside one of {lengths[longest]} steps (padded to it): {np.round(padded, 4).tolist()}"
    )
    return {
        "data": (sequences, labels),
        "model": model,
        "alone": alone,
        "padded": padded,
        "lengths": (lengths[short], lengths[longest]),
    }


if __name__ == "__main__":
    torch.set_num_threads(1)  # small networks: one thread is as fast, and shares the CPU well
    main()
