"""The random generators that items load with (see ``_loading``): each
batch's seed, drawn from its epoch's, and torch's (CPU), NumPy's and
Python's global generators seeded with it, then, in the fitting process,
set back to the training's states.

A Dataset's ``__getitem__`` draws from the global generators (the legacy
NumPy ones above all), so they are seeded for every batch, wherever it
loads: an item's augmentation depends on neither the number of workers
nor which worker loads it, and a resumed epoch loads its remaining batches
as the interrupted one would have.
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Iterator

import numpy as np
import torch

# Public since NumPy 1.25 as numpy.random.get_bit_generator and
# set_bit_generator; NumPy's stubs export them from mtrand only.
from numpy.random.mtrand import get_bit_generator, set_bit_generator

# ruff: noqa: NPY002  (the global generators are the point here)

#: The bit generator NumPy's global functions draw from while items load
#: in this process (the training's is set aside, untouched).
_LOADING_BITS = np.random.MT19937(0)

#: The global generators are the process's: fits loading items in threads of
#: one process take turns, or one could set back another's loading state.
_GLOBALS = threading.RLock()


def batch_seeds(epoch_seed: int, numbers: list[int]) -> list[int]:
    """The seeds of an epoch's batches ``numbers`` (ascending), drawn from
    its seed: one ``SeedSequence`` an epoch (one a batch costs ~15 us)."""
    if not numbers:
        return []
    words = np.random.SeedSequence(epoch_seed).generate_state(numbers[-1] + 1, np.uint64)
    return [int(words[number]) >> 2 for number in numbers]


def seed_globals(seed: int) -> None:
    """torch's, NumPy's (loading's bit generator, by ``np.random.seed``'s
    legacy seeding) and Python's global generators seeded with ``seed``."""
    torch.random.default_generator.manual_seed(seed)
    set_bit_generator(_LOADING_BITS)
    np.random.seed(seed % 2**32)
    random.seed(seed)


@contextlib.contextmanager
def generators_kept() -> Iterator[None]:
    """The global generators set back afterwards to their states now.

    NumPy's gets its bit generator back, untouched while items loaded from
    loading's own: a microsecond, where ``set_state`` costs some 40 (it
    writes the 624 words of its key one by one). Setting a bit generator
    forgets a cached Gaussian: that one is put back by ``set_state``."""
    with _GLOBALS:
        torch_state, python_state = torch.get_rng_state(), random.getstate()
        numpy_state = np.random.get_state(legacy=False)
        training = get_bit_generator()
        try:
            yield
        finally:
            torch.set_rng_state(torch_state)
            random.setstate(python_state)
            set_bit_generator(training)
            if numpy_state["has_gauss"]:
                np.random.set_state(numpy_state)
