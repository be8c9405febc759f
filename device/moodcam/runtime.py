"""Pick a TFLite interpreter: ai-edge-litert, else tflite-runtime, else TensorFlow's tf.lite."""

from __future__ import annotations

import importlib
from typing import Any

from moodcam.errors import ModelError

# (name users see and configure, module, attribute)
RUNTIMES: tuple[tuple[str, str, str], ...] = (
    ("ai-edge-litert", "ai_edge_litert.interpreter", "Interpreter"),
    ("tflite-runtime", "tflite_runtime.interpreter", "Interpreter"),
    ("tensorflow", "tensorflow.lite", "Interpreter"),
)


def interpreter_class(preferred: str = "auto") -> tuple[str, type]:
    """The first runtime that imports (or exactly `preferred`), as (name, Interpreter class)."""
    tried = []
    for name, module, attr in RUNTIMES:
        if preferred not in ("auto", name):
            continue
        try:
            return name, getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            tried.append(f"{name} ({e.__class__.__name__}: {e})")
    want = "any TFLite runtime" if preferred == "auto" else f"runtime {preferred!r}"
    raise ModelError(
        f"no usable {want}: tried {'; '.join(tried) or 'nothing'}; "
        "install ai-edge-litert (or tflite-runtime with numpy<2)"
    )


def load_interpreter(
    model_path: str,
    threads: int = 1,
    preferred: str = "auto",
    model_content: bytes | None = None,
) -> tuple[Any, str]:
    """Load and allocate a model; bad files raise ModelError naming the file.

    With `model_content` (the file's bytes, already read) the model is built from those bytes and
    `model_path` only names it in messages."""
    name, cls = interpreter_class(preferred)
    source = (
        {"model_path": str(model_path)}
        if model_content is None
        else {"model_content": model_content}
    )
    try:
        interp = cls(**source, num_threads=threads)
        interp.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
        raise ModelError(f"{model_path}: not a valid TFLite model ({first})") from None
    return interp, name
