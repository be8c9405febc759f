"""Weight averaging of a run's last epochs (training/swa.py) on a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import (
    constant_model,
    desktop,
    random_faces,
    tiny_fer_csv,
    tiny_model,
    write_run_config,
)
from training.swa import average_weights, reestimate_batchnorm, snapshots

pytestmark = desktop  # training/ and convert/ need TensorFlow


def test_average_of_snapshots_is_the_elementwise_mean(tmp_path: Path) -> None:
    model = tiny_model()
    (tmp_path / "epochs").mkdir()
    rng = np.random.default_rng(0)
    written = []
    for epoch in (1, 2, 3):
        weights = [rng.normal(size=w.shape).astype(np.float32) for w in model.get_weights()]
        model.set_weights(weights)
        model.save_weights(tmp_path / "epochs" / f"epoch_{epoch:03d}.weights.h5")
        written.append(weights)
    (tmp_path / "epochs" / "notes.weights.h5").write_bytes(b"not a snapshot")
    snaps = snapshots(tmp_path)
    assert list(snaps) == [1, 2, 3]
    average_weights(model, [snaps[2], snaps[3]])
    for got, a, b in zip(model.get_weights(), written[1], written[2], strict=True):
        np.testing.assert_allclose(got, (a + b) / 2, rtol=1e-6, atol=1e-6)


def test_batchnorm_statistics_are_recomputed_from_the_faces() -> None:
    import keras

    model = tiny_model()
    faces = random_faces(300)
    bn = next(la for la in model.layers if isinstance(la, keras.layers.BatchNormalization))
    bn.moving_mean.assign(np.full(bn.moving_mean.shape, 99.0, np.float32))
    reestimate_batchnorm(model, faces, batch=100)
    # The BN input is the conv output; its per-channel mean over all faces and positions.
    conv_out = keras.Model(model.input, bn.input)(faces[..., None].astype(np.float32))
    expected = np.asarray(conv_out).mean(axis=(0, 1, 2))
    np.testing.assert_allclose(np.asarray(bn.moving_mean), expected, rtol=1e-3, atol=1e-4)
    assert bn.momentum == pytest.approx(0.99)  # restored


@pytest.mark.parametrize("average_wins", [True, False])
def test_swa_keras_is_written_only_when_an_average_beats_the_best_epoch(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    average_wins: bool,
) -> None:
    import training.swa

    monkeypatch.setattr(training.swa, "CACHE_DIR", tmp_path / "cache")
    data = tiny_fer_csv(tmp_path)
    run = tmp_path / "run"
    (run / "epochs").mkdir(parents=True)
    write_run_config(run)
    (run / "state.json").write_text(json.dumps({"best_epoch": 2}))
    happy, angry = constant_model(1), constant_model(0)
    (happy if not average_wins else angry).save(run / "best.keras")
    for epoch in (1, 2, 3):
        (happy if average_wins else angry).save_weights(
            run / "epochs" / f"epoch_{epoch:03d}.weights.h5"
        )
    happy.save(run / "last.keras")
    (run / "swa.keras").write_bytes(b"stale average from an earlier call")

    assert training.swa.main([str(run), "--last", "2", "3", "--data", str(data),
                              "--bn-faces", "8"]) == 0  # fmt: skip
    result = json.loads((run / "swa.json").read_text())
    happy_acc, angry_acc = round(800 / 11, 2), round(100 / 11, 2)
    assert result["best_single_epoch"]["publictest"] == (angry_acc if average_wins else happy_acc)
    assert {c["publictest"] for c in result["candidates"].values()} == {
        happy_acc if average_wins else angry_acc
    }
    assert result["beats_best_single_epoch"] is average_wins
    assert (run / "swa.keras").is_file() is average_wins
    # Without a winning average, say which model to ship (in a soup it may be any run's).
    said = f"make convert MODEL={run / 'best.keras'}" in capsys.readouterr().out
    assert said is not average_wins


def test_a_soup_averages_the_last_epochs_of_every_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keras

    import training.swa

    monkeypatch.setattr(training.swa, "CACHE_DIR", tmp_path / "cache")
    data = tiny_fer_csv(tmp_path)
    runs = [tmp_path / "a", tmp_path / "b"]
    rng = np.random.default_rng(1)
    model = constant_model(1)
    dense = model.layers[-1]
    biases: dict[tuple[int, int], np.ndarray] = {}
    for i, (run, epochs) in enumerate(zip(runs, ([1, 2, 3], [1, 2, 3, 4]), strict=True)):
        (run / "epochs").mkdir(parents=True)
        write_run_config(run)
        for epoch in epochs:  # every snapshot says happy, each with its own bias
            bias = np.array([0, 10, 0, 0], np.float32) + rng.uniform(-1, 1, 4).astype(np.float32)
            dense.set_weights([dense.get_weights()[0], bias])
            model.save_weights(run / "epochs" / f"epoch_{epoch:03d}.weights.h5")
            biases[i, epoch] = bias
        model.save(run / "last.keras")

    assert training.swa.main([*map(str, runs), "--last", "2", "3", "4", "--data", str(data),
                              "--bn-faces", "8"]) == 0  # fmt: skip
    result = json.loads((runs[0] / "swa.json").read_text())
    assert result["runs"] == [str(r) for r in runs]
    # Run a has 3 epochs, so the 4-epoch window is skipped; every window takes the last N of each.
    assert {n: c["epochs"] for n, c in result["candidates"].items()} == {
        "2": {str(runs[0]): [2, 3], str(runs[1]): [3, 4]},
        "3": {str(runs[0]): [1, 3], str(runs[1]): [2, 4]},
    }
    # All candidates tie (all say happy), so the first, the last 2 epochs, is kept.
    assert result["chosen"] == "2" and result["beats_best_single_epoch"] is True
    soup = keras.models.load_model(runs[0] / "swa.keras", compile=False)
    expected = (biases[0, 2] + biases[0, 3] + biases[1, 3] + biases[1, 4]) / 4
    np.testing.assert_allclose(soup.layers[-1].get_weights()[1], expected, rtol=1e-5, atol=1e-6)
