"""scikit-learn's digits (1,797 8x8 images, 10 classes, shipped inside the wheel): the offline image set the SiGeo
notebook uses in place of MNIST and CIFAR-10."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class ImageSplits:
    """Train/valid/test tensors: images [N, 1, 8, 8] standardised with the training mean and std, labels [N]."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_valid: torch.Tensor
    y_valid: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int = 10

    def summary(self) -> dict:
        return {"train": len(self.y_train), "valid": len(self.y_valid), "test": len(self.y_test),
                "shape": list(self.x_train.shape[1:]), "classes": self.n_classes}


def load_digits_splits(n_valid: int = 300, n_test: int = 300, seed: int = 0) -> ImageSplits:
    """A seeded random split of the 1,797 digits; the rest (1,197 by default) is the training set."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.images.astype(np.float32)[:, None]
    y = d.target.astype(np.int64)
    if n_valid < 1 or n_test < 1 or n_valid + n_test >= len(y) - 64:
        raise ValueError(f"n_valid={n_valid} and n_test={n_test} leave too few of the {len(y)} images for training")
    perm = np.random.default_rng(seed).permutation(len(y))
    te, va, tr = perm[:n_test], perm[n_test:n_test + n_valid], perm[n_test + n_valid:]
    mu, sd = x[tr].mean(), x[tr].std()
    t = lambda a: torch.from_numpy((x[a] - mu) / sd)  # noqa: E731
    return ImageSplits(t(tr), torch.from_numpy(y[tr]), t(va), torch.from_numpy(y[va]), t(te), torch.from_numpy(y[te]))
