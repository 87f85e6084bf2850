"""A convolutional network on images, tuned by ``GridSearchCV(n_jobs=2)``.

The digits are 8x8 images: given as an array of shape ``(n, 1, 8, 8)``
(samples, channels, height, width), they reach the module with that shape,
so a ``Conv2d`` reads them as images; nothing is flattened by hand.

1. ``CNN`` is a module class whose constructor names ``input_shape``: the
   fit passes it the shape of one sample, ``(1, 8, 8)``, and ``n_outputs``,
   the number of classes, so the network sizes itself from the data.
2. ``GridSearchCV`` with ``n_jobs=2`` tunes ``module__channels`` (the
   number of convolution filters) by 3-fold cross-validation in two worker
   processes; the images are split by rows as any array.
3. ``predict`` checks the shape of what it is given against the fit's: a
   flat ``(n, 64)`` array is refused with a message that says both shapes.

Run ``python examples/images_cnn.py``.
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split
from torch import nn

from skcallback import NeuralClassifier


class CNN(nn.Module):
    """A convolution, pooling and a linear layer, sized from ``input_shape``."""

    def __init__(self, input_shape: tuple[int, ...], n_outputs: int, channels: int = 4) -> None:
        super().__init__()
        c, h, w = input_shape  # one sample's shape: (1, 8, 8) for the digits
        self.net = nn.Sequential(
            nn.Conv2d(c, channels, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(channels * (h // 2) * (w // 2), n_outputs),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)  # logits; the classifier's loss and predict_proba expect them


def load_data():
    """The digits as images ``(n, 1, 8, 8)``, pixels scaled to [0, 1]; a
    quarter held out for testing."""
    X, y = load_digits(return_X_y=True)
    images = (X / 16.0).reshape(-1, 1, 8, 8).astype("float32")
    return train_test_split(images, y, test_size=0.25, stratify=y, random_state=0)


def make_model(**params) -> NeuralClassifier:
    return NeuralClassifier(
        module=CNN, lr=1e-2, batch_size=64, max_epochs=6, random_state=0
    ).set_params(**params)


def tune(data, channels=(1, 6), cv: int = 3) -> GridSearchCV:
    X_train, X_test, y_train, y_test = data
    search = GridSearchCV(make_model(), {"module__channels": list(channels)}, cv=cv, n_jobs=2)
    search.fit(X_train, y_train)
    for value, score in zip(channels, search.cv_results_["mean_test_score"], strict=True):
        print(f"  channels={value}: cross-validated accuracy {score:.3f}")
    best = search.best_estimator_
    print(
        f"best: channels={search.best_params_['module__channels']}, "
        f"test accuracy {best.score(X_test, y_test):.3f}"
    )
    return search


def show_shape_check(model: NeuralClassifier, data) -> str:
    """``predict`` on the flat pixels instead of the images: refused."""
    X_test = data[1]
    try:
        model.predict(X_test.reshape(len(X_test), -1))
    except ValueError as error:
        print(f"predict on flat pixels: ValueError: {error}")
        return str(error)
    raise AssertionError("a flat X was accepted")


def main() -> dict:
    data = load_data()
    print(f"1. {len(data[0])} training images of shape {data[0].shape[1:]}")
    print("\n2. GridSearchCV(n_jobs=2) over module__channels")
    search = tune(data)
    print("\n3. predict checks the shape of X")
    message = show_shape_check(search.best_estimator_, data)
    return {"data": data, "search": search, "message": message}


if __name__ == "__main__":
    torch.set_num_threads(1)  # small networks: one thread is as fast, and shares the CPU well
    main()
