"""Training callbacks: a progress bar people can watch, curves people can look at, a plain log."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import keras
from tqdm import tqdm


def log_line(stream: TextIO) -> Callable[[str], None]:
    def log(msg: str) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}"
        tqdm.write(line)
        stream.write(line + "\n")
        stream.flush()

    return log


class ProgressBar(keras.callbacks.Callback):
    """One tqdm bar per epoch over its batches, with the running loss and accuracy."""

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = epochs
        self.bar: tqdm | None = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.bar = tqdm(
            total=self.params.get("steps"),
            desc=f"epoch {epoch + 1}/{self.epochs}",
            unit="batch",
            leave=False,
            dynamic_ncols=True,
            mininterval=2.0,
        )

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if logs:
                self.bar.set_postfix(
                    loss=f"{logs['loss']:.3f}", acc=f"{logs['accuracy']:.3f}", refresh=False
                )

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.bar is not None:
            self.bar.close()


def read_history(history_csv: Path) -> list[dict[str, float]]:
    """A run's history.csv as one row per epoch, in epoch order (`epoch` 0-based, as logged).

    A resumed run logs the epoch it was cut in twice; the later row is the one its checkpoint kept.
    """
    with open(history_csv, newline="") as f:
        by_epoch = {int(r["epoch"]): r for r in csv.DictReader(f)}
    return [
        {key: float(value) for key, value in by_epoch[epoch].items()} for epoch in sorted(by_epoch)
    ]


def plot_curves(history_csv: Path, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_history(history_csv)
    if not rows:
        return
    epochs = [int(r["epoch"]) + 1 for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("loss", "train"), ("val_loss", "PublicTest")):
        ax_loss.plot(epochs, [r[key] for r in rows], label=label)
    for key, label in (("accuracy", "train (augmented)"), ("val_accuracy", "PublicTest")):
        ax_acc.plot(epochs, [100 * r[key] for r in rows], label=label)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy %", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


class CurvesPlot(keras.callbacks.Callback):
    """Redraw the training curves PNG after every epoch (CSVLogger must run before this)."""

    def __init__(self, history_csv: Path, png: Path):
        super().__init__()
        self.history_csv, self.png = history_csv, png

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        plot_curves(self.history_csv, self.png)
