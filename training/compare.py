"""Compare candidates with a baseline on PublicTest: their curves and a paired test.

    python -m training.compare runs/s8-okdw runs/s9-okdw-s2 runs/s10-okdw-s3 --json seeds.json

The first argument is the baseline. Each argument is a run folder (scored through its best.keras;
its history.csv gives the best epoch, the last one and the mean of the last five) or a model file
(.keras, or .tflite through the device's own runtime). Against the baseline, each candidate gets
the PublicTest faces only one of the two gets right and McNemar's exact p for them: a gap of a few
tenths of a point between two models is often noise, and this says how likely. Choosing happens
on PublicTest, so PrivateTest is never read here.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from moodcam.errors import ModelError
from moodcam.labels import DEFAULT_CLASSES, parse_class_list
from training import data as fer
from training.callbacks import read_history
from training.evaluate import CACHE_DIR, check_classes, predict_keras, predict_tflite
from training.models import trained_classes


def mcnemar_p(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar p: how likely a split at least this uneven of the faces exactly
    one model gets right is, if either model were equally likely to be the right one."""
    n, k = only_a + only_b, min(only_a, only_b)
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)


def paired(right_a: np.ndarray, right_b: np.ndarray) -> dict[str, Any]:
    """Candidate `a` against baseline `b`, from per-face right/wrong of the same faces."""
    only_a, only_b = int((right_a & ~right_b).sum()), int((right_b & ~right_a).sum())
    return {
        "only_candidate_right": only_a,
        "only_baseline_right": only_b,
        "difference_points": round(100 * (only_a - only_b) / len(right_a), 2),
        "mcnemar_p": round(mcnemar_p(only_a, only_b), 3),
    }


def curve_summary(history: Path) -> dict[str, Any]:
    """Best, best epoch (1-based), last and last-5 mean of a run's PublicTest curve, in %.

    A resumed run's repeated epoch counts once (`training.callbacks.read_history`).
    """
    acc = [100 * row["val_accuracy"] for row in read_history(history)]
    best = int(np.argmax(acc))
    return {
        "epochs": len(acc),
        "best": round(acc[best], 2),
        "best_epoch": best + 1,
        "last": round(acc[-1], 2),
        "last5_mean": round(float(np.mean(acc[-5:])), 2),
    }


def model_of(path: Path) -> Path:
    """The model file a command-line argument names: itself, or a run folder's best.keras."""
    if path.is_dir():
        path = path / "best.keras"
    if path.suffix not in (".keras", ".tflite") or not path.is_file():
        raise FileNotFoundError(f"{path}: no such model (give a run folder or a .keras/.tflite)")
    return path


def predict(model: Path, faces: np.ndarray, classes: tuple[str, ...]) -> np.ndarray:
    """Scores of `faces` in `classes` order, or ModelError if the model answers in other classes
    (a seven-class run scored against four-class labels would give a silently wrong figure)."""
    if model.suffix == ".tflite":
        from moodcam.classifier import Classifier

        clf = Classifier(model)
        own: tuple[str, ...] | None = clf.labels
        scores = predict_tflite(clf, faces)
    else:
        own = trained_classes(model)  # None without a run's config.json: the output width decides
        scores = predict_keras(model, faces)
    check_classes(model, own, scores.shape[1], classes)
    return scores


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m training.compare", description=__doc__.splitlines()[0]
    )
    p.add_argument("baseline", type=Path, help="run folder or model file")
    p.add_argument("candidates", type=Path, nargs="+", help="run folders or model files")
    p.add_argument(
        "--data", help="FER2013 folder or file (default $MOODCAM_DATA or ../shared/data)"
    )
    p.add_argument("--classes", default=",".join(DEFAULT_CLASSES))
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)
    classes = parse_class_list(args.classes)
    try:
        models = {str(a): model_of(a) for a in [args.baseline, *args.candidates]}
        source = fer.find_fer2013(fer.data_dir(args.data))
        faces, y = fer.select_classes(fer.load_fer2013(source, cache_dir=CACHE_DIR), classes)
    except (FileNotFoundError, fer.DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    split = fer.protocol_splits(faces)[0]  # PublicTest, or an image-folder tree's hold-out
    mask = faces.usage == split
    if not mask.any():
        print(f"error: {source}: no {split} faces of {', '.join(classes)}", file=sys.stderr)
        return 2
    x, labels = faces.images[mask], y[mask]

    report: dict[str, Any] = {
        "split": split,
        "faces": int(mask.sum()),
        "baseline": str(args.baseline),
        "models": {},
    }
    right_of = {}
    for name, model in models.items():
        try:
            right_of[name] = predict(model, x, classes).argmax(1) == labels
        except ModelError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        entry: dict[str, Any] = {
            "model": str(model),
            "accuracy": round(100 * float(right_of[name].mean()), 2),
        }
        history = Path(name) / "history.csv"
        if history.is_file():
            entry["curve"] = curve_summary(history)
        if name != str(args.baseline):
            entry["paired_vs_baseline"] = paired(right_of[name], right_of[str(args.baseline)])
        report["models"][name] = entry

    print(f"{split}, {report['faces']} faces; paired against {args.baseline}")
    for name, e in report["models"].items():
        line = f"{name:32s} {e['accuracy']:6.2f}%"
        if "curve" in e:
            c = e["curve"]
            line += (
                f"  best epoch {c['best_epoch']} of {c['epochs']}, last {c['last']:.2f}%, "
                f"last-5 mean {c['last5_mean']:.2f}%"
            )
        if "paired_vs_baseline" in e:
            q = e["paired_vs_baseline"]
            line += (
                f"  | only it right {q['only_candidate_right']}, only baseline "
                f"{q['only_baseline_right']}, {q['difference_points']:+.2f} points, "
                f"McNemar p {q['mcnemar_p']}"
            )
        print(line)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
