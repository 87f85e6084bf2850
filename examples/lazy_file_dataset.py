# ruff: noqa: NPY002  (the augmentation draws from NumPy's global generator, as Datasets do)
"""A torch ``Dataset`` that reads each item from a file when it is asked
for, loaded in two worker processes, in a fit that resumes where it was
interrupted.

The data: 160 small single-channel images ``(1, 6, 6)``, written one file
each into a folder per class; an image's class is 1 when its pixels sum to
more than 0. Only the file names are held in memory.

1. ``FileImages`` opens a file in ``__getitem__`` and adds a little random
   noise (augmentation, from NumPy's global generator). ``fit(dataset)``
   takes it with ``y=None``: the items are ``(image, label)`` pairs. The
   labels are read once, in one pass over the items, at the start of the
   fit (for the classes and the stratified validation split).
2. ``dataloader__num_workers=2`` loads the batches in two processes
   (``dataloader__persistent_workers=True`` keeps them across epochs). Every
   batch is loaded with generators seeded from ``random_state`` and the
   batch's place in the fit, so the noise, and the trained model, are the
   same with 0, 1 or 2 workers.
3. ``Checkpoint(resume=True)``: a fit that crashes is re-run, continues
   from its last checkpoint (written every 4 steps, mid-epoch too) and ends
   exactly as the uninterrupted fit, the same weights bit for bit. Run as a
   script with a folder (``python examples/lazy_file_dataset.py FOLDER``),
   kill it with Ctrl-C or ``kill -9`` and run it again: it goes on from
   there; run once more after it finished: it trains nothing.

Run ``python examples/lazy_file_dataset.py [FOLDER]``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from skcallback import NeuralClassifier
from skcallback.callbacks import Checkpoint, LambdaCallback


class FileImages(Dataset):
    """One file of raw float32 pixels per image, in a folder named after its
    class (``0/``, ``1/``, as torchvision's ``ImageFolder`` reads them);
    a file is read when its item is asked for."""

    def __init__(self, folder: str | Path) -> None:
        self.files = sorted(Path(folder).glob("*/*.f32"))  # names only: the data stays on disk

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        path = self.files[i]
        image = np.fromfile(path, dtype=np.float32).reshape(1, 6, 6)
        noise = np.random.normal(0, 0.05, size=image.shape).astype(np.float32)
        return image + noise, int(path.parent.name)


def write_images(folder: str | Path, n: int = 160) -> Path:
    """Write ``n`` labelled images, one file each (once: existing files stay)."""
    folder = Path(folder)
    rng = np.random.default_rng(0)
    for i in range(n):
        image = rng.normal(size=(1, 6, 6)).astype(np.float32)
        path = folder / str(int(image.sum() > 0)) / f"{i:04d}.f32"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            image.tofile(path)
    return folder


class SmallCNN(nn.Module):
    def __init__(self, n_outputs: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, n_outputs)
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


def crash_at(step: int | None) -> LambdaCallback:
    """A crash after optimizer step ``step`` (None: never), standing for a
    killed process."""

    def after_step(ctx) -> None:
        if ctx.step == step:
            raise RuntimeError(f"crashed after step {step}")

    return LambdaCallback(name="crash", on_after_step=after_step)


def make_model(checkpoints: str | Path, crash: int | None = None) -> NeuralClassifier:
    return NeuralClassifier(
        module=SmallCNN,
        lr=1e-2,
        batch_size=16,
        max_epochs=5,
        random_state=0,
        dataloader__num_workers=2,
        dataloader__persistent_workers=True,
        callbacks=[
            Checkpoint(dirname=checkpoints, every_n_steps=4, resume=True),
            crash_at(crash),
        ],
    )


def same_weights(a: NeuralClassifier, b: NeuralClassifier) -> bool:
    pairs = zip(a.module_.state_dict().values(), b.module_.state_dict().values(), strict=True)
    return all(torch.equal(x, y) for x, y in pairs)


def main(folder: str | None = None) -> dict:
    """Write the images, fit once uninterrupted, then crash a fit and re-run
    it (files under ``folder``, a temporary folder by default)."""
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(folder or scratch)
        images = FileImages(write_images(root / "images"))
        image, label = images[0]
        print(f"1. {len(images)} images on disk; item 0: {image.shape}, label {label}")
        print("\n2. an uninterrupted fit with 2 loading workers")
        full = make_model(root / "full").fit(images)
        print(f"   {full.n_iter_} epochs, {full.n_steps_} steps; classes {full.classes_.tolist()}")
        print("\n3. a fit that crashes after step 21 (mid-epoch), then the same line again")
        try:
            make_model(root / "run", crash=21).fit(images)
        except RuntimeError as error:
            print(f"   {error}")
        resumed = make_model(root / "run").fit(images)
        from_file = Path(resumed.callbacks_.checkpoint.resumed_from_).name
        same = same_weights(resumed, full)
        print(f"   re-run resumed from {from_file}; the same weights as the full fit: {same}")
        accuracy = resumed.score(images, [label for _, label in images])
        print(f"   accuracy on the (noisy) images: {accuracy:.3f}")
    return {"full": full, "resumed": resumed, "same": same, "accuracy": accuracy}


def run_in(folder: str) -> None:
    """The script with a folder: one fit that resumes when run again."""
    images = FileImages(write_images(Path(folder) / "images"))
    model = make_model(Path(folder) / "checkpoints").fit(images)
    resumed_from = model.callbacks_.checkpoint.resumed_from_
    print(f"trained to epoch {model.n_iter_} (step {model.n_steps_}); resumed from {resumed_from}")


if __name__ == "__main__":
    torch.set_num_threads(1)  # small networks: one thread is as fast, and shares the CPU well
    if len(sys.argv) > 1:
        run_in(sys.argv[1])
    else:
        main()
