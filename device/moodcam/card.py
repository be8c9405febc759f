"""The model card (models/moodcam.json): what the device must know about a model, and proof of it.

Written by convert/, read here at start. The device refuses a model whose tensors or labels do
not match its card, or whose bytes are not the ones the card's model_sha256 names, naming both
files.

Labels. Nothing in a model's tensors says which output is "happy": every four-class int8 model
here has the same tensors, so a card whose labels were reordered by hand would run and answer
under wrong names. The card therefore carries two digests, both required:

- ``model_sha256``: sha256 of the model file's bytes (another model is refused);
- ``labels_sha256``: `labels_seal`, sha256 over that digest and the label list in output order,
  as convert wrote them. A card whose labels were edited (swapped, renamed, reordered) keeps the
  model digest but fails this one.

The seal guards against mistakes (an edited card, a card from another conversion), not against
someone who can write both files and recompute it: the device has no key to check a signature
with, and whoever can replace its card can replace its model too. `python -m convert.seal` adds
the seal to a card written before it existed, after checking the card's model digest.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from moodcam.errors import ModelError
from moodcam.files import FileRefused, read_text
from moodcam.labels import FER2013_CLASSES

CARD_VERSION = 1
REQUIRED = (
    "card_version",
    "labels",
    "input",
    "output",
    "preprocessing",
    "model_sha256",
    "labels_sha256",
)
_SHA256 = re.compile(r"[0-9a-f]{64}")


def card_path_for(model_path: str | Path) -> Path:
    return Path(model_path).with_suffix(".json")


def load_card(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        card = json.loads(read_text(path, "a model card"))
    except FileNotFoundError:
        raise ModelError(
            f"{path}: model card not found (convert/ writes it beside the model)"
        ) from None
    except FileRefused as e:  # /dev/zero, a FIFO, a folder: never read
        raise ModelError(f"{path}: {e}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelError(f"{path}: not a readable model card: {e}") from None
    if not isinstance(card, dict):
        raise ModelError(f"{path}: a model card is a JSON object")
    missing = [k for k in REQUIRED if k not in card]
    if missing:
        raise ModelError(
            f"{path}: model card lacks {', '.join(missing)} (make convert writes a card with "
            "each; python -m convert.seal adds the digests to an older card)"
        )
    for key in ("model_sha256", "labels_sha256"):
        if not isinstance(card[key], str) or not _SHA256.fullmatch(card[key]):
            raise ModelError(f"{path}: {key} is not a sha256 hex digest: {str(card[key])[:80]!r}")
    if card["card_version"] != CARD_VERSION:
        raise ModelError(
            f"{path}: card_version {card['card_version']}, this moodcam reads {CARD_VERSION}"
        )
    labels = card["labels"]
    if (
        not isinstance(labels, list)
        or not all(lbl in FER2013_CLASSES for lbl in labels)
        or len(labels) < 2
        or len(set(labels)) != len(labels)  # two outputs with one name: scores would collapse
    ):
        raise ModelError(
            f"{path}: labels must be a list of FER2013 class names, each once, got {labels!r}"
        )
    return card


def tensor_summary(detail: dict[str, Any]) -> dict[str, Any]:
    """The parts of an interpreter tensor detail that a card pins down."""
    import numpy as np  # here: reading a card (moodcam web) needs no numpy

    scale, zero_point = detail["quantization"]
    return {
        "shape": [int(v) for v in detail["shape"]],
        "dtype": np.dtype(detail["dtype"]).name,
        "scale": float(scale),
        "zero_point": int(zero_point),
    }


def check_model_matches(
    card: dict[str, Any],
    interpreter: Any,
    model_path: Path,
    card_path: Path,
    model_bytes: bytes,
) -> None:
    """Raise ModelError naming both files when the model's tensors or labels differ from the card.

    `model_bytes`, the bytes the interpreter was built from, are what the card's digest is checked
    against."""
    import numpy as np

    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    where = f"{model_path} does not match its card {card_path}"
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelError(
            f"{where}: expected one input and one output, found {len(inputs)} and {len(outputs)}"
        )
    for role in ("input", "output", "preprocessing"):
        if not isinstance(card[role], dict):
            raise ModelError(f"{card_path}: {role} must be a JSON object, got {card[role]!r}")
    for role, detail in (("input", inputs[0]), ("output", outputs[0])):
        got, want = tensor_summary(detail), card[role]
        for key in ("shape", "dtype", "zero_point"):
            if got[key] != want.get(key):
                raise ModelError(f"{where}: {role} {key} is {got[key]}, card says {want.get(key)}")
        scale = want.get("scale")
        is_number = isinstance(scale, (int, float)) and not isinstance(scale, bool)
        if not is_number or not np.isclose(got["scale"], scale, rtol=1e-6):  # null: was a TypeError
            raise ModelError(
                f"{where}: {role} scale is {got['scale']}, card says {want.get('scale')}"
            )
    if outputs[0]["shape"][-1] != len(card["labels"]):
        raise ModelError(
            f"{where}: the model has {outputs[0]['shape'][-1]} outputs, the card {len(card['labels'])} labels"
        )
    check_model_usable(inputs[0], outputs[0], model_path)
    # Tensors alone cannot tell two conversions apart (every four-class int8 model here has the
    # same input and output quantization), so the card's digests must hold (module docstring):
    # a model retrained with the labels in another order would otherwise answer under wrong names.
    want = card["model_sha256"]
    got = hashlib.sha256(model_bytes).hexdigest()
    if got != want:
        raise ModelError(
            f"{where}: its sha256 is {got[:12]}..., the card was written for {str(want)[:12]}... "
            "(use the card make convert wrote with this model)"
        )
    if card["labels_sha256"] != labels_seal(got, card["labels"]):
        raise ModelError(
            f"{where}: the card's labels {', '.join(card['labels'])} are not the ones make convert "
            "wrote for this model (labels_sha256 differs: a card's labels cannot be edited, they "
            "are the model's output order)"
        )


def labels_seal(model_sha256: str, labels: Sequence[str]) -> str:
    """The card's labels_sha256: sha256 over the model's digest and its labels in output order."""
    text = f"moodcam labels v1\n{model_sha256}\n{json.dumps(list(labels))}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


USABLE_DTYPES = ("int8", "uint8", "float32")


def check_model_usable(inp: dict[str, Any], out: dict[str, Any], model_path: Path) -> None:
    """ModelError unless the device can feed the model: a card can faithfully describe a model
    that is no face classifier (colour input, a sequence output); refuse it at start rather than
    fail on the first face."""
    import numpy as np

    in_shape = [int(v) for v in inp["shape"]]
    out_shape = [int(v) for v in out["shape"]]
    if len(in_shape) != 4 or in_shape[0] != 1 or in_shape[3] != 1 or in_shape[1] != in_shape[2]:
        raise ModelError(
            f"{model_path}: input shape {in_shape} is not one square grey face [1, N, N, 1]"
        )
    if not 8 <= in_shape[1] <= 1024:
        raise ModelError(f"{model_path}: input size {in_shape[1]} is not a face size (8..1024)")
    if len(out_shape) != 2 or out_shape[0] != 1:
        raise ModelError(
            f"{model_path}: output shape {out_shape} is not one score per label [1, labels]"
        )
    for role, detail in (("input", inp), ("output", out)):
        dtype = np.dtype(detail["dtype"]).name
        if dtype not in USABLE_DTYPES:
            raise ModelError(
                f"{model_path}: {role} dtype {dtype} is not one of {', '.join(USABLE_DTYPES)}"
            )
        scale = float(detail["quantization"][0])
        if dtype != "float32" and not scale > 0:
            raise ModelError(f"{model_path}: {role} is {dtype} without a quantization scale")
