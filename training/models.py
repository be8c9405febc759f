"""Model architectures. Each takes raw gray pixels (0..255) and ends in a softmax over the classes.

The Rescaling layer maps pixels to [0, 1]; at conversion it folds into the int8 input's scale, so
the device feeds `pixel - 128` as int8 and nothing more.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
from keras import layers

from moodcam.preprocess import FACE_SIZE


def _inputs() -> tuple[keras.KerasTensor, keras.KerasTensor]:
    inp = keras.Input((FACE_SIZE, FACE_SIZE, 1), name="face")
    return inp, layers.Rescaling(1.0 / 255.0, name="to_unit")(inp)


def seed(n_classes: int) -> keras.Model:
    """The baseline from the poster: conv 64/128/256, max-pool x2, quadrant pooling, dense 200."""
    inp, x = _inputs()
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(128, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(256, 3, padding="same", activation="relu")(x)
    # Quadrant pooling: the 12x12 map pooled into its four 6x6 quadrants.
    half = x.shape[1] // 2
    x = layers.MaxPooling2D(half, name="quadrant_pool")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(200, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    out = layers.Dense(n_classes, activation="softmax", name="scores")(x)
    return keras.Model(inp, out, name="seed")


def _conv_bn(x, filters: int, name: str, stride: int = 1):
    # No bias: batch norm follows and is folded into the conv weights at conversion.
    x = layers.Conv2D(
        filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv"
    )(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _sep_bn(x, filters: int, name: str):
    x = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"{name}_dw")(x)
    x = layers.BatchNormalization(name=f"{name}_dwbn")(x)
    x = layers.ReLU(name=f"{name}_dwrelu")(x)
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_pw")(x)
    x = layers.BatchNormalization(name=f"{name}_pwbn")(x)
    return layers.ReLU(name=f"{name}_pwrelu")(x)


def edge(
    n_classes: int,
    widths: tuple[int, ...] = (32, 64, 128, 256),
    dropout: float = 0.4,
    first_convs: int = 1,
) -> keras.Model:
    """The product model: a VGG-style stack of conv-BN-ReLU pairs, sized for a Pi.

    Full 3x3 convs at every scale (they train fast on CPU and run fast in XNNPACK's int8
    kernels), one conv at 48x48 where pixels are many and channels few, global average pooling
    instead of a wide dense layer, so the int8 file stays small. `first_convs=2` spends invoke
    time rather than bytes: a second conv at 48x48 costs few weights and many MACs.
    """
    inp, x = _inputs()
    for i, w in enumerate(widths):
        for j in range(first_convs if i == 0 else 2):
            x = _conv_bn(x, w, f"b{i}{'abcd'[j]}")
        if i < len(widths) - 1:
            x = layers.MaxPooling2D(2, name=f"b{i}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout)(x)
    out = layers.Dense(n_classes, activation="softmax", name="scores")(x)
    return keras.Model(inp, out, name="edge")


def edge_sep(
    n_classes: int, widths: tuple[int, ...] = (32, 64, 128, 256), dropout: float = 0.4
) -> keras.Model:
    """Depthwise-separable variant of `edge` (fewer MACs, slower to train on CPU)."""
    inp, x = _inputs()
    x = _conv_bn(x, widths[0], "stem")
    for i, w in enumerate(widths):
        x = _sep_bn(x, w, f"b{i}a")
        if i > 0:
            x = _sep_bn(x, w, f"b{i}b")
        if i < len(widths) - 1:
            x = layers.MaxPooling2D(2, name=f"b{i}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout)(x)
    out = layers.Dense(n_classes, activation="softmax", name="scores")(x)
    return keras.Model(inp, out, name="edge_sep")


ARCHS = {
    "seed": seed,
    "edge": lambda n: edge(n, widths=(32, 64, 128, 192)),
    "edge_wide": lambda n: edge(n, widths=(32, 64, 128, 256, 256)),
    "edge_small": lambda n: edge(n, widths=(24, 48, 96, 192)),
    # edge with two convs of 64 at 48x48: a few more weights, about twice the MACs.
    "edge_hr": lambda n: edge(n, widths=(64, 64, 128, 192), first_convs=2),
    "edge_sep": edge_sep,
    # Too big for the device (4.7 M params, 384 M MACs): a wider teacher to distil from.
    "teacher": lambda n: edge(n, widths=(64, 128, 256, 512), dropout=0.5),
}


def build(arch: str, n_classes: int) -> keras.Model:
    if arch not in ARCHS:
        raise ValueError(f"unknown --arch {arch!r}; choose from {', '.join(ARCHS)}")
    return ARCHS[arch](n_classes)


def trained_classes(model_path: str | Path) -> tuple[str, ...] | None:
    """The classes a model was trained on, from its run folder's config.json (None if absent)."""
    cfg = Path(model_path).parent / "config.json"
    if not cfg.is_file():
        return None
    classes = json.loads(cfg.read_text()).get("classes")
    return tuple(classes) if classes else None


def keep_classes(
    model: keras.Model, trained: tuple[str, ...], wanted: tuple[str, ...]
) -> keras.Model:
    """`model` (trained on the classes `trained`) with a head over `wanted` only, same body.

    The new head keeps the old head's rows for `wanted`: a softmax over a subset of the logits
    ranks those classes as the full model did, so the cut model starts where the old one was
    (pretraining on all seven FER2013 classes, then a four-class second phase).
    """
    missing = [c for c in wanted if c not in trained]
    if missing:
        raise ValueError(
            f"the model was trained on {','.join(trained)}; it has no output for {','.join(missing)}"
        )
    old = model.get_layer("scores")
    kernel, bias = old.get_weights()
    rows = [trained.index(c) for c in wanted]
    head = layers.Dense(len(wanted), activation="softmax", name="scores")
    cut = keras.Model(model.input, head(old.input), name=model.name)
    head.set_weights([kernel[:, rows], bias[rows]])
    return cut


def macs(model: keras.Model) -> int:
    """Multiply-accumulates of one forward pass (convs and dense layers)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.DepthwiseConv2D):
            _, h, w, c = layer.output.shape
            total += h * w * c * layer.kernel_size[0] * layer.kernel_size[1]
        elif isinstance(layer, layers.Conv2D):
            _, h, w, c = layer.output.shape
            cin = layer.input.shape[-1]
            total += h * w * c * cin * layer.kernel_size[0] * layer.kernel_size[1]
        elif isinstance(layer, layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return int(total)


def with_flip_average(model: keras.Model) -> keras.Model:
    """The model averaged with itself on the mirrored face: one invoke, both views.

    Faces are roughly left-right symmetric in expression, so the mirror is a second opinion at
    twice the compute and no extra weights; chosen or not on PublicTest at conversion.
    """
    from keras import ops

    inp = keras.Input(model.input_shape[1:], name="face")
    mirrored = layers.Lambda(lambda x: ops.flip(x, axis=2), name="mirror")(inp)
    out = layers.Average(name="scores_avg")([model(inp), model(mirrored)])
    return keras.Model(inp, out, name=f"{model.name}_flipavg")
