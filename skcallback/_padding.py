"""A list of variable-length samples padded by ``pad_sequences``, batched
as arrays are: every sample is converted to a tensor once a fit, and each
batch is padded from those tensors in one call, instead of being loaded
item by item and converted again every epoch.

A batch is what ``pad_sequences`` returns for the same items (the samples
converted alike, the same padding call), so a fit trains on the same
numbers whichever path loads it. Nothing is seeded: neither the list nor
``pad_sequences`` draws random numbers.
"""

from __future__ import annotations

import torch


class PaddedSamples:
    """Samples (tensors of shape ``(length, ...)``) padded a batch at a
    time with ``padding_value``, with their lengths."""

    def __init__(self, tensors: list[torch.Tensor], padding_value: float) -> None:
        self.tensors, self.padding_value = tensors, padding_value
        self.lengths = torch.tensor([len(sample) for sample in tensors], dtype=torch.int64)

    def batch(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(padded, lengths)`` of the samples ``rows`` (an int64 tensor)."""
        picked = [self.tensors[row] for row in rows.tolist()]
        padded = torch.nn.utils.rnn.pad_sequence(
            picked, batch_first=True, padding_value=self.padding_value
        )
        return padded, self.lengths.index_select(0, rows)
