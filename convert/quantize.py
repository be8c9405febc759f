"""Full-integer int8 conversion: int8 weights, activations, input and output."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np


def to_int8_tflite(model, calibration: np.ndarray, steps: int | None = None) -> bytes:
    """Convert a Keras model to an int8-in/int8-out TFLite flatbuffer.

    `calibration`: (N, 48, 48) uint8 faces from Training, the same pixels the device feeds.
    Batch norm folds into the convs here; the Rescaling layer folds into the input's scale.
    """
    import tensorflow as tf

    faces = calibration[:steps] if steps else calibration

    def representative() -> Iterator[list[np.ndarray]]:
        for face in faces:
            yield [face.reshape(1, *face.shape, 1).astype(np.float32)]

    with tempfile.TemporaryDirectory() as tmp:
        saved = Path(tmp) / "saved_model"
        model.export(str(saved), format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        return converter.convert()
