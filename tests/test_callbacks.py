"""Training's history reader and curves plot, on a history.csv as a resumed run leaves it."""

from __future__ import annotations

from pathlib import Path

from training.callbacks import plot_curves, read_history


def _resumed_history(path: Path) -> Path:
    # Cut during epoch 3 (0-based 2) and resumed: CSVLogger(append=True) logs it again.
    path.write_text(
        "epoch,accuracy,loss,val_accuracy,val_loss\n"
        "0,0.5,1.2,0.55,1.1\n"
        "1,0.6,1.0,0.60,1.0\n"
        "2,0.65,0.9,0.58,1.05\n"
        "2,0.66,0.88,0.62,0.95\n"
        "3,0.7,0.8,0.63,0.9\n"
    )
    return path


def test_read_history_keeps_one_row_per_epoch_the_later_one(tmp_path: Path) -> None:
    rows = read_history(_resumed_history(tmp_path / "history.csv"))
    assert [r["epoch"] for r in rows] == [0, 1, 2, 3]
    assert [r["val_accuracy"] for r in rows] == [0.55, 0.60, 0.62, 0.63]
    assert rows[2]["accuracy"] == 0.66


def test_plot_curves_draws_each_epoch_once(tmp_path: Path, monkeypatch) -> None:
    import matplotlib.pyplot as plt

    drawn: list[list[int]] = []
    plot = plt.Axes.plot
    monkeypatch.setattr(
        plt.Axes, "plot", lambda ax, x, *a, **k: drawn.append(list(x)) or plot(ax, x, *a, **k)
    )
    png = tmp_path / "curves.png"
    plot_curves(_resumed_history(tmp_path / "history.csv"), png)
    assert png.stat().st_size > 0
    assert drawn == [[1, 2, 3, 4]] * 4  # loss, val_loss, accuracy, val_accuracy
