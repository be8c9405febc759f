"""Read a shipped int8 model back into its Keras layout, to train on from where it stands.

    python -m training.recover models/moodcam.tflite --out runs/shipped

Run folders (runs/) do not always outlive a session, while models/moodcam.tflite and its card are
in git. This writes OUT/best.keras (the card's architecture with the int8 file's weights,
dequantized) and OUT/config.json, so `train --init OUT/best.keras` and `--teacher OUT/best.keras`
go on from the shipped model instead of from nothing.

Conversion folded each batch norm into its conv (weights and bias) and the Rescaling(1/255) into
the first conv. Both are undone without changing what the model computes: the first conv's
weights are scaled back by 255, and each batch norm gets the statistics of its conv's output on
Training faces (augmented as the run that trained the model, by its card) with a scale and shift
that cancel them. In inference mode the Keras model then computes the int8 model's function with
float arithmetic; in training mode, batch statistics near those means, it starts there too
(a batch norm set to identity would instead re-normalise every channel at the first step).
OUT/recover.json holds the recovered model's PublicTest accuracy beside the card's int8 figure.
PrivateTest is not read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from moodcam.card import card_path_for, load_card
from moodcam.errors import ModelError
from moodcam.runtime import load_interpreter


def _dequantize(interp: Any, detail: dict[str, Any]) -> np.ndarray:
    """A constant tensor's real values (per-channel int8 weights along axis 0, int32 biases)."""
    index, q = detail["index"], detail["quantization_parameters"]
    raw = interp.get_tensor(index).astype(np.float64)
    scales, zeros = np.asarray(q["scales"], np.float64), np.asarray(q["zero_points"], np.float64)
    if scales.size == 0:
        return raw
    if scales.size > 1 and q["quantized_dimension"] != 0:
        raise ModelError(
            f"{detail['name']}: quantized along axis {q['quantized_dimension']}, not 0"
        )
    shape = (-1,) + (1,) * (raw.ndim - 1)
    return (raw - zeros.reshape(shape)) * scales.reshape(shape)


def tflite_layers(path: str | Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(op, weights, bias) of every CONV_2D and FULLY_CONNECTED in graph order, real-valued.

    Weights in TFLite order: convs [out, h, w, in], dense [out, in]."""
    interp, _ = load_interpreter(str(path))
    details = {d["index"]: d for d in interp.get_tensor_details()}
    found = []
    # _get_ops_details: the only way the interpreter lists a graph's ops and their tensors.
    for op in interp._get_ops_details():
        if op["op_name"] in ("CONV_2D", "FULLY_CONNECTED"):
            _, w, b = op["inputs"][:3]
            weights = _dequantize(interp, details[w])
            # An all-zero bias may be left out of the graph (index -1).
            bias = _dequantize(interp, details[b]) if b >= 0 else np.zeros(weights.shape[0])
            found.append((op["op_name"], weights, bias))
        elif op["op_name"] == "DEPTHWISE_CONV_2D":
            raise ModelError(f"{path}: depthwise convs are not recoverable (only conv-BN layouts)")
    return found


def _bn_after(model: Any, conv: Any) -> Any:
    """The BatchNormalization layer that consumes `conv`'s output."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization) and layer.input is conv.output:
            return layer
    raise ModelError(f"{conv.name}: no batch norm after it (not a conv-BN layout)")


def recover(tflite: str | Path, model: Any, bn_faces: np.ndarray) -> Any:
    """`model` (a freshly built Keras model of the int8 model's layout) given the weights of
    `tflite`, batch norms re-expanded on `bn_faces` (uint8, N x H x W); returns `model`."""
    import keras

    if len(bn_faces) == 0:
        raise ModelError("no faces to re-expand the batch norms on")
    convs = [
        layer
        for layer in model.layers
        if isinstance(layer, keras.layers.Conv2D)
        and not isinstance(layer, keras.layers.DepthwiseConv2D)
    ]
    denses = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    ops = tflite_layers(tflite)
    conv_ops = [o for o in ops if o[0] == "CONV_2D"]
    dense_ops = [o for o in ops if o[0] == "FULLY_CONNECTED"]
    if len(conv_ops) != len(convs) or len(dense_ops) != len(denses):
        raise ModelError(
            f"{tflite}: {len(conv_ops)} convs and {len(dense_ops)} dense layers, but {model.name} "
            f"has {len(convs)} and {len(denses)}"
        )
    rescale = [layer for layer in model.layers if isinstance(layer, keras.layers.Rescaling)]
    # The device feeds real pixel values (0..255); the Keras model scales them first.
    input_scale = float(rescale[0].scale) if rescale else 1.0
    biases = []
    for i, (layer, (_, w, b)) in enumerate(zip(convs, conv_ops, strict=True)):
        kernel = w.transpose(1, 2, 3, 0)
        if i == 0:
            kernel = kernel / input_scale
        if tuple(kernel.shape) != tuple(layer.kernel.shape):
            raise ModelError(
                f"{tflite}: conv {i} has weights {kernel.shape}, {model.name} wants "
                f"{tuple(layer.kernel.shape)}"
            )
        layer.kernel.assign(kernel.astype(np.float32))
        biases.append(b.astype(np.float32))
    for layer, (_, w, b) in zip(denses, dense_ops, strict=True):
        if w.T.shape != tuple(layer.kernel.shape):
            raise ModelError(
                f"{tflite}: dense weights {w.T.shape}, {model.name} wants "
                f"{tuple(layer.kernel.shape)}"
            )
        layer.set_weights([w.T.astype(np.float32), b.astype(np.float32)])

    bns = [_bn_after(model, c) for c in convs]
    for bn, bias in zip(bns, biases, strict=True):  # identity plus bias, exactly
        n = bias.shape[0]
        bn.set_weights(
            [
                np.ones(n, np.float32),
                bias,
                np.zeros(n, np.float32),
                np.full(n, 1.0 - bn.epsilon, np.float32),
            ]
        )
    # Each conv's output on the faces: earlier layers already compute the int8 model's function.
    probe = keras.Model(model.input, [c.output for c in convs])
    sums = [np.zeros(c.filters) for c in convs]
    squares = [np.zeros(c.filters) for c in convs]
    counts = [0] * len(convs)
    for start in range(0, len(bn_faces), 256):
        outs = probe(bn_faces[start : start + 256][..., None].astype(np.float32), training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]  # a one-conv model
        for k, out in enumerate(outs):
            x = np.asarray(out, np.float64).reshape(-1, convs[k].filters)
            sums[k] += x.sum(0)
            squares[k] += (x * x).sum(0)
            counts[k] += x.shape[0]
    for k, (bn, bias) in enumerate(zip(bns, biases, strict=True)):
        mean = sums[k] / counts[k]
        var = np.maximum(squares[k] / counts[k] - mean * mean, 0.0)
        gamma = np.sqrt(var + bn.epsilon)
        bn.set_weights(
            [
                gamma.astype(np.float32),
                (mean + bias).astype(np.float32),
                mean.astype(np.float32),
                var.astype(np.float32),
            ]
        )
    return model


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m training.recover", description=__doc__.splitlines()[0]
    )
    p.add_argument("tflite", type=Path, help="int8 model with its card beside it (NAME.json)")
    p.add_argument("--out", type=Path, required=True, help="run folder to write")
    p.add_argument(
        "--bn-faces", type=_positive, default=8192, help="Training faces for BN statistics"
    )
    p.add_argument(
        "--data", help="FER2013 folder or file (default $MOODCAM_DATA or ../shared/data)"
    )
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from training import data as fer
    from training.evaluate import CACHE_DIR
    from training.models import build
    from training.swa import accuracy, batchnorm_faces

    try:  # an unusable --out stops before the work, not after it
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"error: --out {args.out}: {e}", file=sys.stderr)
        return 2
    try:
        card = load_card(card_path_for(args.tflite))
        classes = tuple(card["labels"])
        arch = card["architecture"]["name"]
        run = card.get("training", {}).get("run", {})
        faces = fer.load_fer2013(fer.find_fer2013(fer.data_dir(args.data)), cache_dir=CACHE_DIR)
        faces, y = fer.select_classes(fer.clean_training(faces), classes)
        model_digest = fer.sha256_file(args.tflite)
    except (ModelError, fer.DataError, OSError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    train = faces.images[faces.usage == "Training"]
    bn_faces = batchnorm_faces(train, args.bn_faces, run.get("augment", "camera"))
    try:
        model = recover(args.tflite, build(arch, len(classes)), bn_faces)
    except (ModelError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    choose = fer.protocol_splits(faces)[0]
    val = faces.usage == choose
    acc = accuracy(model, faces.images[val], y[val])
    card_int8 = card.get("metrics", {}).get(choose, {}).get("int8", {}).get("accuracy")
    config = {
        **run,
        "arch": arch,
        "classes": list(classes),
        "recovered_from": {"model": str(args.tflite), "sha256": model_digest},
    }
    report = {
        "model": str(args.tflite),
        "sha256": model_digest,
        "arch": arch,
        "split": choose,
        "recovered_float_accuracy": acc,
        "card_int8_accuracy": card_int8,
    }
    try:
        model.save(args.out / "best.keras")
        (args.out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        (args.out / "recover.json").write_text(json.dumps(report, indent=2) + "\n")
    except OSError as e:
        print(f"error: --out {args.out}: {e}", file=sys.stderr)
        return 2
    print(f"{args.out / 'best.keras'}: {choose} {acc} % (the int8 model's card: {card_int8} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
