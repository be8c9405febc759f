"""Train a moodcam model on FER2013: `python -m training.train --arch edge --out runs/edge`.

Train on Training (leakage and blanks removed), choose the epoch on PublicTest, never look at
PrivateTest here. Resumable: re-running with the same --out continues from the last epoch.
Writes to --out: last.keras (resume point), best.keras (best PublicTest accuracy), history.csv,
curves.png, train.log, config.json and epochs/epoch_NNN.weights.h5 (every epoch's weights).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from moodcam.errors import ModelError
from moodcam.labels import DEFAULT_CLASSES, FER2013_CLASSES, parse_class_list
from training import data as fer
from training.augment import PRESETS

CACHE_DIR = Path(__file__).resolve().parent.parent / ".cache"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m training.train", description=__doc__.splitlines()[0]
    )
    p.add_argument(
        "--data", help=f"FER2013 folder or file (default ${fer.DATA_ENV} or ../shared/data)"
    )
    p.add_argument("--arch", default="edge", help="model architecture (training/models.py)")
    p.add_argument(
        "--classes", default=",".join(DEFAULT_CLASSES), help="comma-separated FER2013 class names"
    )
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument(
        "--lr", type=float, default=2e-3, help="peak learning rate (AdamW, cosine decay)"
    )
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup", type=float, default=2.0, help="warm-up epochs")
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument(
        "--ferplus",
        choices=["off", "soft", "majority"],
        default="soft",
        help="use FER+ votes: soft targets mixed with FER2013 labels, or FER+ majority labels",
    )
    p.add_argument("--ferplus-weight", type=float, default=0.3, help="FER+ share of a soft target")
    p.add_argument(
        "--augment",
        choices=[*PRESETS, "off"],
        default="camera",
        help="augmentation strength (training/augment.py PRESETS)",
    )
    p.add_argument("--no-augment", action="store_true", help="same as --augment off")
    p.add_argument(
        "--mixup",
        type=float,
        default=0.0,
        metavar="ALPHA",
        help="blend pairs of faces and their targets, weight ~ Beta(ALPHA, ALPHA) (0 = off)",
    )
    p.add_argument(
        "--init",
        help="start from this .keras model's weights (a second phase after an earlier run) "
        "with a fresh optimizer and schedule; a model of more classes keeps their head rows",
    )
    p.add_argument(
        "--teacher",
        action="append",
        default=[],
        metavar="MODEL",
        help="distil from this .keras model (repeat for an ensemble; training/distill.py)",
    )
    p.add_argument(
        "--teacher-mode",
        choices=["fixed", "online"],
        default="fixed",
        help="teachers score each face once (fixed) or every augmented batch (online)",
    )
    p.add_argument(
        "--teacher-weight", type=float, default=0.5, help="teacher share of a training target"
    )
    p.add_argument(
        "--teacher-temperature",
        type=float,
        default=2.0,
        help="softening of the teacher's outputs (1 = as they are)",
    )
    p.add_argument(
        "--teacher-only-faces",
        action="store_true",
        help="also train on the Training faces of the FER2013 classes this run leaves out, "
        "with the teachers' targets alone (they have no label among this run's classes)",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default="runs/edge", help="run folder (checkpoints, logs, plots)")
    args = p.parse_args(argv)
    # Checked here, before any data is read: an online teacher would otherwise meet them only
    # in the first batch.
    if not 0.0 <= args.teacher_weight <= 1.0:
        p.error(f"--teacher-weight must be in [0, 1], got {args.teacher_weight}")
    if args.teacher_temperature <= 0:
        p.error(f"--teacher-temperature must be positive, got {args.teacher_temperature}")
    if args.mixup < 0:
        p.error(f"--mixup must be 0 (off) or positive, got {args.mixup}")
    if args.teacher_only_faces and not args.teacher:
        p.error("--teacher-only-faces needs a --teacher to give those faces their targets")
    if args.teacher_only_faces and set(parse_class_list(args.classes)) >= set(FER2013_CLASSES):
        p.error("--teacher-only-faces: this run already uses every FER2013 class")
    if args.no_augment:
        args.augment = "off"
    return args


def load_training_data(args: argparse.Namespace, classes: tuple[str, ...]):
    root = fer.data_dir(args.data)
    faces = fer.load_fer2013(fer.find_fer2013(root), cache_dir=CACHE_DIR)
    if args.ferplus != "off":
        plus = fer.find_ferplus(root)
        if plus is None:
            raise fer.DataError(f"{root}: --ferplus {args.ferplus} needs ferplus/fer2013new.csv")
        faces = fer.attach_ferplus(faces, plus)
    faces = fer.clean_training(faces)
    if args.teacher_only_faces:
        left_out = ~fer.of_classes(faces, classes)
        teacher_only = faces.images[left_out & (faces.usage == "Training")]
    else:
        teacher_only = faces.images[:0]
    faces, y = fer.select_classes(faces, classes)
    return faces, y, teacher_only


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    classes = parse_class_list(args.classes)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import keras

    from training import models
    from training.callbacks import CurvesPlot, ProgressBar, log_line
    from training.feed import AugmentedFaces

    logf = open(out / "train.log", "a", encoding="utf-8")  # noqa: SIM115 - lives for the run
    log = log_line(logf)

    try:
        faces, y, teacher_only = load_training_data(args, classes)
    except fer.DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    train = faces.usage == "Training"
    val = faces.usage == fer.protocol_splits(faces)[0]  # PublicTest, or the folder tree's hold-out
    x_train, x_val = faces.images[train], faces.images[val]
    if args.ferplus == "majority":
        y_major = fer.ferplus_majority(faces, classes)
        keep = train & (y_major >= 0)
        x_train = faces.images[keep]
        t_train = np.eye(len(classes), dtype=np.float32)[y_major[keep]]
    else:
        weight = args.ferplus_weight if args.ferplus == "soft" else 0.0
        t_train = fer.soft_targets(faces.subset(train), y[train], classes, weight)
    t_val = np.eye(len(classes), dtype=np.float32)[y[val]]
    train_counts = np.bincount(t_train.argmax(1), minlength=len(classes)).tolist()
    n_labelled = len(x_train)
    if len(teacher_only):  # label targets of zeros: the teachers give these faces all their target
        x_train = np.concatenate([x_train, teacher_only])
        t_train = np.concatenate([t_train, np.zeros((len(teacher_only), len(classes)), np.float32)])

    config = vars(args) | {
        "classes": list(classes),
        "data_sha256": faces.sha256,
        "data_source": faces.source,
        "dropped_from_training": faces.dropped,
        "n_train": n_labelled,
        "n_teacher_only": len(teacher_only),
        "n_val": len(x_val),
        "train_counts": train_counts,
    }
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    log(
        f"data: {faces.source} sha256 {faces.sha256[:12]}; dropped {faces.dropped}; "
        f"train {n_labelled} val {len(x_val)}"
        + (f"; {len(teacher_only)} teacher-only faces" if len(teacher_only) else "")
    )
    online_teacher = None
    if args.teacher:
        from training.distill import OnlineTeacher, mix_targets, teacher_targets

        try:
            if args.teacher_mode == "online":
                online_teacher = OnlineTeacher(args.teacher, classes, args.teacher_temperature)
            else:
                taught = teacher_targets(
                    args.teacher, x_train, classes, args.teacher_temperature, cache_dir=out
                )
        except (fer.DataError, ModelError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        if online_teacher is None:
            labelled = slice(0, n_labelled)
            agree = float((taught[labelled].argmax(1) == t_train[labelled].argmax(1)).mean())
            t_train = mix_targets(t_train, taught, args.teacher_weight)
            said = f"teacher agrees with the label on {100 * agree:.1f}% of training faces"
        else:
            said = "teachers score every augmented batch (online)"
        log(
            f"distilling from {len(args.teacher)} teacher(s), weight {args.teacher_weight}, "
            f"temperature {args.teacher_temperature}; {said}"
        )

    keras.utils.set_random_seed(args.seed)
    steps = math.ceil(len(x_train) / args.batch)
    last, best = out / "last.keras", out / "best.keras"
    snapshots = out / "epochs"
    state_path = out / "state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() and last.exists() else {}
    if state:
        model = keras.models.load_model(last)
        log(f"resuming {last} after epoch {state['epoch']}")
    else:
        if args.init:
            model = keras.models.load_model(args.init)
            trained = models.trained_classes(args.init)
            if trained is not None and trained != classes:
                try:
                    model = models.keep_classes(model, trained, classes)
                except ValueError as e:
                    print(f"error: --init {args.init}: {e}", file=sys.stderr)
                    return 2
                log(f"cut its head from {','.join(trained)} to {','.join(classes)}")
            elif model.output_shape[-1] != len(classes):
                print(
                    f"error: --init {args.init}: {model.output_shape[-1]} outputs for "
                    f"{len(classes)} classes, and no config.json beside it names its classes",
                    file=sys.stderr,
                )
                return 2
            log(f"starting from the weights of {args.init}")
        else:
            model = models.build(args.arch, len(classes))
        schedule = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=args.lr / 10,
            decay_steps=max(1, steps * args.epochs - int(steps * args.warmup)),
            warmup_target=args.lr,
            warmup_steps=int(steps * args.warmup),
            alpha=0.01,
        )
        model.compile(
            optimizer=keras.optimizers.AdamW(schedule, weight_decay=args.weight_decay),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=args.label_smoothing),
            metrics=["accuracy"],
        )
        state = {"epoch": 0, "best_val_accuracy": 0.0}
        log(
            f"model {args.arch}: {model.count_params()} params, {models.macs(model) / 1e6:.1f}M MACs"
        )

    seq = AugmentedFaces(
        x_train,
        t_train,
        args.batch,
        args.seed,
        augment=PRESETS.get(args.augment),
        teacher=online_teacher,
        teacher_weight=args.teacher_weight,
        mixup=args.mixup,
    )
    seq.epoch = state["epoch"]

    class Checkpoint(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            self.model.save(last)
            # Every epoch's weights (3-4 MB each), so the tail of a run can be averaged later
            # (python -m training.swa) with the epochs chosen on PublicTest.
            snapshots.mkdir(exist_ok=True)
            self.model.save_weights(snapshots / f"epoch_{epoch + 1:03d}.weights.h5")
            if logs.get("val_accuracy", 0) > state["best_val_accuracy"]:
                state["best_val_accuracy"] = float(logs["val_accuracy"])
                state["best_epoch"] = epoch + 1
                self.model.save(best)
            state["epoch"] = epoch + 1
            state_path.write_text(json.dumps(state, indent=2) + "\n")
            log(
                f"epoch {epoch + 1}/{args.epochs} "
                + " ".join(f"{k} {v:.4f}" for k, v in logs.items())
            )

    if state["epoch"] < args.epochs:
        t0 = time.time()
        model.fit(
            seq,
            validation_data=(x_val[..., None].astype(np.float32), t_val),
            epochs=args.epochs,
            initial_epoch=state["epoch"],
            verbose=0,
            callbacks=[
                ProgressBar(args.epochs),
                keras.callbacks.CSVLogger(str(out / "history.csv"), append=True),
                Checkpoint(),
                CurvesPlot(out / "history.csv", out / "curves.png"),
            ],
        )
        log(f"trained to epoch {state['epoch']} in {time.time() - t0:.0f} s")
    log(
        f"best PublicTest accuracy {state['best_val_accuracy']:.4f} at epoch {state.get('best_epoch')}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
