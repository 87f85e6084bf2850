"""One rank of the ``ddp`` benchmark (``run.py``), launched by torchrun:
the L workload with ``strategy="ddp"`` and one thread; rank 0 prints
``seconds allreduce_seconds`` (wall time of the fit, and the part of it
spent in the all-reduces).

Usage: torchrun --nproc_per_node=2 --standalone ddp_child.py ROWS BATCH_SIZE
"""

import sys
import time

import torch
import torch.distributed as dist

from skcallback import NeuralRegressor
from skcallback._distributed import Group

from contenders import regression_data

torch.set_num_threads(1)
spent = [0.0]
plain_all_reduce = Group.all_reduce


def timed_all_reduce(self, tensor):
    started = time.perf_counter()
    try:
        return plain_all_reduce(self, tensor)
    finally:
        spent[0] += time.perf_counter() - started


Group.all_reduce = timed_all_reduce

if __name__ == "__main__":
    rows, batch_size = (int(a) for a in sys.argv[1:])
    X, y = regression_data(rows, 100)
    est = NeuralRegressor(
        hidden_layer_sizes=(512, 512),
        batch_size=batch_size,
        max_epochs=2,
        validation_fraction=None,
        random_state=0,
        threads=1,
        strategy="ddp",
    )
    est.fit(X[:256], y[:256])  # joins the group, warms up
    dist.barrier()
    spent[0] = 0.0
    started = time.perf_counter()
    est.fit(X, y)
    seconds = time.perf_counter() - started
    if dist.get_rank() == 0:
        print(f"{seconds} {spent[0]}", flush=True)
