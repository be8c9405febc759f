"""Convert a trained Keras model to the shipped int8 model and write its card.

    python -m convert.convert runs/edge/best.keras --out models/moodcam.tflite

Calibrates on real Training faces, evaluates float and int8 on the same PublicTest and
PrivateTest faces, measures single-thread invoke latency, and writes the model, its card
(models/moodcam.json) and a confusion-matrix PNG. Every number in the card comes from this run.

    python -m convert.convert runs/b1/best.keras --stage --out models/stages/b1.tflite

`--stage` keeps a model of an unfinished recipe instead (a teacher, an ensemble member): run
folders do not always outlive a session, git does, and training/recover.py reads such a file back
into Keras. Its card has the architecture, the run's settings and PublicTest alone: PrivateTest
is not read for a model that is not shipped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from moodcam.card import CARD_VERSION, labels_seal, tensor_summary
from moodcam.labels import parse_class_list
from moodcam.preprocess import FACE_SIZE
from training import data as fer
from training.evaluate import (
    conditions_accuracy,
    confusion_png,
    eval_sets,
    metrics,
    peer_metrics,
    peer_predict,
    predict_keras,
    predict_tflite,
)
from training.margin import haar_margin

from .quantize import to_int8_tflite

ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = ROOT / ".cache"
SHIPPED = ROOT / "models" / "moodcam.tflite"

PREPROCESSING = {
    "face_size": FACE_SIZE,
    "color": "gray: cv2.cvtColor BGR2GRAY (BT.601 luma)",
    "resize": "cv2.resize to face_size: INTER_AREA when shrinking, INTER_LINEAR when enlarging",
    "normalisation": "none on the device: uint8 pixels are quantized with the input scale and "
    "zero point (scale 1, zero point -128 means int8 = pixel - 128); the model's Rescaling(1/255) "
    "is folded into that scale",
    "code": "moodcam.preprocess.crop_face + prepare_face; moodcam.classifier.Classifier.quantize",
}


def card_for(
    tflite_path: Path,
    interpreter_details: tuple[dict, dict],
    classes: tuple[str, ...],
    margin: tuple[float, int],
    extra: dict[str, Any],
) -> dict[str, Any]:
    data = tflite_path.read_bytes()
    inp, out = interpreter_details
    digest = hashlib.sha256(data).hexdigest()
    return {
        "card_version": CARD_VERSION,
        "model_file": tflite_path.name,
        "model_bytes": len(data),
        "model_sha256": digest,
        "labels": list(classes),
        "labels_sha256": labels_seal(digest, classes),
        "input": tensor_summary(inp),
        "output": tensor_summary(out),
        "preprocessing": PREPROCESSING
        | {
            "crop_margin": round(margin[0], 3),
            "crop_margin_method": f"median over {margin[1]} Training faces of how much larger the "
            "FER2013 crop is than the Haar box found on it (training/margin.py), per side",
        },
    } | extra


def write_model(
    model: Any,
    classes: tuple[str, ...],
    calibration: np.ndarray,
    out: Path,
    margin: tuple[float, int] = (0.0, 0),
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Convert `model` to int8, write `out` and its card (without metrics), return the card."""
    from moodcam.runtime import load_interpreter

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tflite.tmp")
    tmp.write_bytes(to_int8_tflite(model, calibration))
    tmp.replace(out)
    interp, _ = load_interpreter(str(out))
    details = (interp.get_input_details()[0], interp.get_output_details()[0])
    card = card_for(out, details, classes, margin, extra or {})
    write_card(card, out.with_suffix(".json"))
    return card


def write_card(card: dict[str, Any], path: Path) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


# A second pass per face must buy more than noise: 0.5 point is 13 of PublicTest's 2,622 faces.
FLIP_MIN_GAIN = 0.5


def choose_inference(
    publictest_int8: dict[str, float], flip_min_gain: float = FLIP_MIN_GAIN
) -> str:
    """Which inference to ship, `plain` or `flip_average`, from their PublicTest int8 accuracies:
    the flip average doubles the invoke, so it is taken only when `flip_min_gain` points better."""
    if "plain" not in publictest_int8:
        return "flip_average"
    if "flip_average" not in publictest_int8:
        return "plain"
    gain = publictest_int8["flip_average"] - publictest_int8["plain"]
    return "flip_average" if gain >= flip_min_gain - 1e-9 else "plain"


# Options of `python -m training.train` that are not settings: where the data and the run live
# (the card records the data by hash and the labels itself).
NOT_SETTINGS = ("data", "out", "classes")


@functools.cache
def run_keys() -> tuple[str, ...]:
    """Every setting train takes, so a new training option reaches the card without a list here."""
    from training.train import parse_args

    return tuple(k for k in vars(parse_args([])) if k not in NOT_SETTINGS)


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def run_summary(run_cfg: dict) -> dict:
    """The training settings worth keeping in the card, from a run's config.json."""
    return {k: run_cfg[k] for k in run_keys() if k in run_cfg}


def settings_summary(run_cfg: dict) -> dict:
    """A run's settings for the card, and for a model read back from an int8 file
    (training/recover.py) which file that was: its settings are those of the run that made it."""
    recovered = {"recovered_from": run_cfg["recovered_from"]} if "recovered_from" in run_cfg else {}
    return {**run_summary(run_cfg), **recovered}


def model_summary(run: Path) -> dict:
    """settings_summary of the run in folder `run` (its config.json)."""
    return settings_summary(_read_json(run / "config.json"))


def teacher_summaries(run_cfg: dict) -> list[dict]:
    """Each distillation teacher (train --teacher) with its run's settings and PublicTest figure."""
    out = []
    for teacher in run_cfg.get("teacher", []):
        run = Path(teacher).parent
        state = _read_json(run / "state.json")
        if "best_val_accuracy" in state:
            accuracy = round(100 * state["best_val_accuracy"], 2)
        else:  # a recovered model has no epochs, only its measured accuracy
            accuracy = _read_json(run / "recover.json").get("recovered_float_accuracy")
        out.append(
            {
                "model": teacher,
                "run": model_summary(run),
                "best_epoch": state.get("best_epoch"),
                "publictest_float_accuracy": accuracy,
            }
        )
    return out


def float_and_int8(
    model: Any, tflite: Any, split: str, sets: dict[str, tuple], classes: tuple[str, ...]
) -> dict[str, Any]:
    """`model` (Keras) and its int8 `tflite` (path or Classifier) on the same faces of `split`."""
    x, yt, agree = sets[split]
    f = metrics(yt, predict_keras(model, x), classes, agree)
    q = metrics(yt, predict_tflite(tflite, x), classes, agree)
    print(f"{split}: float {f['accuracy']:.2f}%  int8 {q['accuracy']:.2f}%  ({len(yt)} faces)")
    return {"float": f, "int8": q, "int8_minus_float": round(q["accuracy"] - f["accuracy"], 2)}


def provenance(
    model: Any,
    base: Any,
    keras_model: Path,
    run_cfg: dict,
    classes: tuple[str, ...],
    faces: fer.FaceSet,
    cleaned: fer.FaceSet,
    splits: tuple[str, str],
    calibration_faces: int,
) -> dict[str, Any]:
    """The card's architecture and training sections: what `model` is (`base`, or `base` with
    the flip average) and how `keras_model`'s run (settings `run_cfg`) trained it on `faces`."""
    from training.models import macs

    run_dir = keras_model.parent
    choose, report = splits

    return {
        "architecture": {
            # train's --arch (training/models.py ARCHS), the name training/recover.py builds: the
            # Keras model's own name is the family's ("edge" for edge_small too).
            "name": run_cfg.get("arch", model.name),
            "params": int(base.count_params()),
            # The flip average runs the network twice per face.
            "macs": macs(base) * (2 if model is not base else 1),
        },
        "training": {
            "data_file": Path(faces.source).name,
            "data_sha256": faces.sha256,
            "splits": {"train": "Training", "choose": choose, "report": report},
            "rows_dropped_from_training": run_cfg.get("dropped_from_training", cleaned.dropped),
            "rows_dropped_reasons": {
                rule: fer.DROP_REASONS[rule]
                for rule in run_cfg.get("dropped_from_training", cleaned.dropped)
            },
            "faces_per_class": dict(zip(classes, run_cfg.get("train_counts", []), strict=False)),
            "run": settings_summary(run_cfg),
            # A second phase (--init) starts from an earlier run's model: that run's settings too.
            **(
                {"init_run": model_summary(Path(run_cfg["init"]).parent)}
                if run_cfg.get("init")
                else {}
            ),
            # Distilled from an ensemble (training/distill.py): the teachers and their runs.
            **({"teachers": teacher_summaries(run_cfg)} if run_cfg.get("teacher") else {}),
            "best_epoch": _read_json(run_dir / "state.json").get("best_epoch"),
            # swa.keras (training/swa.py): the weights are an average of the last epochs.
            **(
                {"weight_average": json.loads((run_dir / "swa.json").read_text())}
                if keras_model.name == "swa.keras" and (run_dir / "swa.json").is_file()
                else {}
            ),
            "calibration_faces": calibration_faces,
        },
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m convert.convert", description=__doc__.splitlines()[0]
    )
    p.add_argument(
        "keras_model", type=Path, help="trained .keras model (its run folder's config.json is read)"
    )
    p.add_argument("--out", type=Path, default=SHIPPED)
    p.add_argument("--data")
    p.add_argument("--calibration-faces", type=int, default=1000)
    p.add_argument("--latency-repeats", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--flip-average",
        choices=["auto", "on", "off"],
        default="auto",
        help="average with the mirrored face inside the model (auto: choose on PublicTest)",
    )
    p.add_argument(
        "--stage",
        action="store_true",
        help="keep an intermediate model for training/recover.py (PublicTest only, no PrivateTest,"
        " no peer; --out must name another file than the shipped model)",
    )
    p.add_argument(
        "--flip-min-gain",
        type=float,
        default=FLIP_MIN_GAIN,
        help="auto takes the flip average only when it beats plain by this many points on "
        "PublicTest int8 (it doubles the invoke time)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.stage and args.out.resolve() == SHIPPED.resolve():
        parser.error(f"--stage does not replace the shipped model; give --out, not {args.out}")
    if args.stage and args.flip_average == "on":
        parser.error("--stage keeps the plain model (training/recover.py reads no flip average)")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    run_dir = args.keras_model.parent
    run_cfg = _read_json(run_dir / "config.json")
    classes = parse_class_list(run_cfg.get("classes", "angry,happy,sad,neutral"))

    try:
        faces = fer.load_fer2013(fer.find_fer2013(fer.data_dir(args.data)), cache_dir=CACHE_DIR)
    except fer.DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    cleaned = fer.clean_training(faces)
    sub, _ = fer.select_classes(cleaned, classes)
    train_faces = sub.images[sub.usage == "Training"]
    rng = np.random.default_rng(args.seed)
    calibration = train_faces[
        rng.choice(len(train_faces), min(args.calibration_faces, len(train_faces)), replace=False)
    ]
    margin = haar_margin(
        train_faces[rng.choice(len(train_faces), min(1000, len(train_faces)), replace=False)]
    )

    # The test splits, with which faces FER+'s raters label as FER2013 does (the card splits
    # accuracy by it). Taken from `faces`, not `cleaned`: cleaning touches Training only, and the
    # calibration faces (so the model bytes) never depend on fer2013new.csv being present.
    try:
        sets = eval_sets(faces, classes, fer.find_ferplus(fer.data_dir(args.data)))
    except fer.DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    choose, report = fer.protocol_splits(faces)  # PublicTest, PrivateTest in the CSV
    base = keras.models.load_model(args.keras_model, compile=False)
    from training.models import with_flip_average

    print(
        f"converting {args.keras_model} ({base.count_params()} params) with {len(calibration)} calibration faces"
    )

    def card_provenance(model: Any) -> dict[str, Any]:
        return provenance(
            model,
            base,
            args.keras_model,
            run_cfg,
            classes,
            faces,
            cleaned,
            (choose, report),
            len(calibration),
        )

    command = "python -m convert.convert " + " ".join(
        shlex.quote(a) for a in (argv or sys.argv[1:])
    )
    # What the card was converted from and with, as fields (training/evaluate.py reads the
    # source model; the command stays, for a person to run again).
    made_by = {
        "source_model": str(args.keras_model),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    if args.stage:
        card = write_model(base, classes, calibration, args.out, margin)
        card |= card_provenance(base)
        card |= {
            "stage": "an intermediate model kept for training/recover.py, not shipped: "
            f"{report} not read",
            "metrics": {choose: float_and_int8(base, args.out, choose, sets, classes)},
            **made_by,
            "command": command,
            "created": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        }
        write_card(card, args.out.with_suffix(".json"))
        print(f"wrote {args.out} ({card['model_bytes']} bytes), {args.out.with_suffix('.json')}")
        return 0
    # Plain, or averaged with the mirrored face: chosen by int8 accuracy on PublicTest.
    candidates = {"plain": base, "flip_average": with_flip_average(base)}
    if args.flip_average != "auto":
        candidates = {
            k: v
            for k, v in candidates.items()
            if (k == "flip_average") == (args.flip_average == "on")
        }
    public = {}
    for name, candidate in candidates.items():
        write_model(candidate, classes, calibration, args.out, margin)
        x, yt, _ = sets[choose]
        public[name] = metrics(yt, predict_tflite(args.out, x), classes)["accuracy"]
        print(f"{choose} int8, {name}: {public[name]:.2f}%")
    chosen = choose_inference(public, args.flip_min_gain)
    model = candidates[chosen]
    card = write_model(model, classes, calibration, args.out, margin)
    card["inference"] = {
        "flip_average": chosen == "flip_average",
        "why": f"chosen by int8 accuracy on {choose} among "
        + ", ".join(public)
        + (
            f"; the flip average (two passes) only if at least {args.flip_min_gain} points better"
            if len(public) > 1
            else ""
        ),
        "publictest_int8_accuracy": public,
    }

    from moodcam.classifier import Classifier

    clf = Classifier(args.out)  # the shipped bytes, loaded once for every figure below
    try:
        peer = {
            s: {k: v for k, v in r.items() if k != "confusion"}
            for s, r in peer_metrics(sets, classes).items()
        }
    except (OSError, subprocess.CalledProcessError) as e:  # the peer needs PyPI; the card does not
        print(f"warning: peer not evaluated: {e}", file=sys.stderr)
        peer = {}
    evaluation = {s: float_and_int8(model, clf, s, sets, classes) for s in (choose, report)}

    # Ordinary camera conditions on the reported split, ours and the peer's, side by side.
    x, yt, _ = sets[report]
    conditions = {
        "moodcam int8": conditions_accuracy(lambda f: predict_tflite(clf, f), x, yt, classes)
    }
    if peer:
        conditions["peer"] = conditions_accuracy(peer_predict(classes), x, yt, classes)
    for name, acc in conditions["moodcam int8"].items():
        print(
            f"{name:24s} moodcam {acc:6.2f}%"
            + (f"   peer {conditions['peer'][name]:6.2f}%" if peer else "")
        )

    times = clf.time_invoke(args.latency_repeats) * 1000
    latency = {
        "median_invoke_ms": round(float(np.median(times)), 4),
        "p90_invoke_ms": round(float(np.percentile(times, 90)), 4),
        "threads": 1,
        "runtime": clf.runtime,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "note": "measured by convert on the converting machine; `make bench` measures it against the peer",
    }
    card |= card_provenance(model)
    card |= {
        "metrics": evaluation,
        "headline": {
            # The key keeps the CSV's split name; `split` says which faces it was measured on.
            "int8_privatetest_accuracy": evaluation[report]["int8"]["accuracy"],
            "faces": evaluation[report]["int8"]["n"],
            "split": report,
        },
        "peer": peer
        | (
            {
                "model": "fer 25.10.3 emotion_model_quantized.tflite (64x64, [-1,1]), argmax over "
                "the same classes"
            }
            if peer
            else {}
        ),
        "conditions": {
            "split": report,
            "method": "training/evaluate.py CONDITIONS",
            "accuracy": conditions,
        },
        "latency": latency,
        **made_by,
        "command": command,
        "created": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
    }
    write_card(card, args.out.with_suffix(".json"))
    png = args.out.with_name(args.out.stem + "-confusion.png")
    confusion_png(
        evaluation[report]["int8"]["confusion"],
        classes,
        f"int8 {report}: {evaluation[report]['int8']['accuracy']:.2f}%",
        png,
    )
    print(f"wrote {args.out} ({card['model_bytes']} bytes), {args.out.with_suffix('.json')}, {png}")
    print(f"median invoke {latency['median_invoke_ms']:.3f} ms ({clf.runtime}, 1 thread)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
