"""Average the weights of a run's last epochs (SWA), chosen on PublicTest.

    python -m training.swa runs/edge-ft --last 3 5 8 12
    python -m training.swa runs/edge-ft runs/edge-ft-s2      # a soup of two fine-tunes

Late in a cosine schedule the weights wander around a wide minimum; their average sits nearer its
centre and usually generalises a little better than any one epoch. For each window (the last N
epochs' snapshots in RUN/epochs/), the weights are averaged, batch-norm statistics re-estimated on
Training faces (a weight average does not come with running means of its own), and the result
scored on PublicTest next to the run's best single epoch. Given several runs that started from the
same model (`train --init`, different seeds), each window takes the last N epochs of every run (a
"model soup": fine-tunes of one starting point often stay in one basin, and then so does their
average; PublicTest says whether they did), and the best single epoch is the best of all runs;
everything is written to the first run's folder. The best average is written to RUN/swa.keras only
when it beats that single epoch on PublicTest (so `make convert` ships whichever won), and every
candidate's PublicTest accuracy goes to RUN/swa.json. PrivateTest is not read.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from moodcam.labels import parse_class_list
from training import data as fer
from training.augment import PRESETS, augment_batch
from training.evaluate import CACHE_DIR

SNAPSHOT = re.compile(r"epoch_(\d{3})\.weights\.h5")


def snapshots(run: Path) -> dict[int, Path]:
    """{epoch: weights file} of the run's per-epoch snapshots."""
    found = {}
    for p in (run / "epochs").glob("epoch_*.weights.h5"):
        m = SNAPSHOT.fullmatch(p.name)
        if m:
            found[int(m.group(1))] = p
    return dict(sorted(found.items()))


def average_weights(model: Any, files: list[Path]) -> None:
    """Set `model`'s weights to the element-wise mean of the weights in `files`."""
    total: list[np.ndarray] | None = None
    for f in files:
        model.load_weights(f)
        w = [np.asarray(v, dtype=np.float64) for v in model.get_weights()]
        total = w if total is None else [a + b for a, b in zip(total, w, strict=True)]
    assert total is not None, "no snapshot files"
    model.set_weights([(t / len(files)).astype(np.float32) for t in total])


def reestimate_batchnorm(model: Any, faces: np.ndarray, batch: int = 128) -> None:
    """Recompute every BatchNormalization layer's moving mean and variance as the plain average
    over `faces` (momentum 1 - 1/i on batch i), in training mode as during training."""
    import keras

    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    saved = [bn.momentum for bn in bns]
    for bn in bns:
        bn.moving_mean.assign(np.zeros(bn.moving_mean.shape, np.float32))
        bn.moving_variance.assign(np.ones(bn.moving_variance.shape, np.float32))
    for i, start in enumerate(range(0, len(faces), batch), start=1):
        for bn in bns:
            bn.momentum = 1.0 - 1.0 / i
        model(faces[start : start + batch][..., None].astype(np.float32), training=True)
    for bn, m in zip(bns, saved, strict=True):
        bn.momentum = m


def batchnorm_faces(train: np.ndarray, n: int, augment: str) -> np.ndarray:
    """A fixed sample of `n` Training faces, augmented as the run was (`augment`, a preset name),
    for batch-norm statistics: those of the faces the weights were trained on."""
    rng = np.random.default_rng(0)
    faces = train[rng.choice(len(train), min(n, len(train)), replace=False)]
    preset = PRESETS.get(augment)
    return faces if preset is None else augment_batch(faces, rng, preset)


def accuracy(model: Any, faces: np.ndarray, labels: np.ndarray) -> float:
    probs = model.predict(faces[..., None].astype(np.float32), batch_size=256, verbose=0)
    return round(100.0 * float((np.argmax(probs, 1) == labels).mean()), 2)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.swa", description=__doc__.splitlines()[0])
    p.add_argument(
        "runs", type=Path, nargs="+", help="run folder(s) with epochs/ snapshots and config.json"
    )
    p.add_argument(
        "--last",
        type=int,
        nargs="+",
        default=[3, 5, 8, 12],
        help="window sizes to try: average of the last N epochs",
    )
    p.add_argument("--bn-faces", type=int, default=8192, help="Training faces for BN statistics")
    p.add_argument(
        "--data", help="FER2013 folder or file (default $MOODCAM_DATA or ../shared/data)"
    )
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    run = args.runs[0]
    snaps = {r: snapshots(r) for r in args.runs}
    for r, found in snaps.items():
        if not found:
            print(f"error: {r}/epochs: no epoch_NNN.weights.h5 snapshots", file=sys.stderr)
            return 2
    cfg = json.loads((run / "config.json").read_text())
    classes = parse_class_list(",".join(cfg["classes"]))
    try:
        faces = fer.load_fer2013(fer.find_fer2013(fer.data_dir(args.data)), cache_dir=CACHE_DIR)
        faces, y = fer.select_classes(fer.clean_training(faces), classes)
    except fer.DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    train = faces.images[faces.usage == "Training"]
    val = faces.usage == fer.protocol_splits(faces)[0]  # PublicTest, or a folder tree's hold-out
    x_val, y_val = faces.images[val], y[val]
    bn_faces = batchnorm_faces(train, args.bn_faces, cfg.get("augment", "camera"))

    model = keras.models.load_model(run / "last.keras", compile=False)
    results: dict[str, Any] = {
        "runs": [str(r) for r in args.runs],
        "epochs": {str(r): list(found) for r, found in snaps.items()},
        "candidates": {},
    }
    best_single = -1.0  # PublicTest accuracy of the best single epoch of all runs
    for r in args.runs:
        if (r / "best.keras").is_file():
            state = json.loads((r / "state.json").read_text())
            acc = accuracy(keras.models.load_model(r / "best.keras", compile=False), x_val, y_val)
            print(f"{r} best single epoch {state.get('best_epoch')}: PublicTest {acc} %")
            if acc > best_single:
                best_single = acc
                results["best_single_epoch"] = {
                    "run": str(r),
                    "epoch": state.get("best_epoch"),
                    "publictest": acc,
                }
    chosen: tuple[float, int] | None = None
    (run / "swa.keras").unlink(missing_ok=True)  # a stale average from an earlier call never wins
    for n in sorted(set(args.last)):
        windows = {r: [e for e in found if e > max(found) - n] for r, found in snaps.items()}
        if any(len(w) < n for w in windows.values()):
            continue
        files = [snaps[r][e] for r, w in windows.items() for e in w]
        average_weights(model, files)
        reestimate_batchnorm(model, bn_faces)
        acc = accuracy(model, x_val, y_val)
        spans = {str(r): [w[0], w[-1]] for r, w in windows.items()}
        results["candidates"][str(n)] = {"epochs": spans, "publictest": acc}
        print(f"average of the last {n} epochs of {len(windows)} run(s): PublicTest {acc} %")
        if chosen is None or acc > chosen[0]:
            chosen = (acc, n)
            if acc > best_single:
                model.save(run / "swa.keras")
    if chosen is None:
        print(f"error: {run}: fewer snapshots than the smallest window", file=sys.stderr)
        return 2
    results["chosen"] = str(chosen[1])
    results["beats_best_single_epoch"] = chosen[0] > best_single
    (run / "swa.json").write_text(json.dumps(results, indent=2) + "\n")
    if results["beats_best_single_epoch"]:
        print(f"chose the last {chosen[1]} epochs ({chosen[0]} %): wrote {run / 'swa.keras'}")
    else:
        best_model = Path(results["best_single_epoch"]["run"]) / "best.keras"
        print(
            f"no average beat the best single epoch ({best_single} %): no swa.keras written; "
            f"ship the best epoch with `make convert MODEL={best_model}`"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
