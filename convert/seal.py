"""Add `labels_sha256` to model cards written before it existed (moodcam.card's docstring).

    python -m convert.seal models/moodcam.json models/stages/*.json

For each card: the model beside it (its `model_file`) must have the bytes the card's
`model_sha256` names, else the card is left alone and the command fails; then the seal over
that digest and the card's labels, in the order convert wrote them, is put after `labels`.
Run it only on cards whose labels nobody has edited: it vouches for what the card says now.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from moodcam.card import labels_seal

from .convert import write_card


def sealed(card: dict[str, Any], model_bytes: bytes) -> dict[str, Any]:
    """`card` with labels_sha256 after labels; ValueError if the model is not the card's."""
    digest = hashlib.sha256(model_bytes).hexdigest()
    if card.get("model_sha256") != digest:
        raise ValueError(f"the model's sha256 is {digest[:12]}..., the card names another")
    out: dict[str, Any] = {}
    for key, value in card.items():
        if key != "labels_sha256":
            out[key] = value
        if key == "labels":
            out["labels_sha256"] = labels_seal(digest, value)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m convert.seal", description=__doc__)
    parser.add_argument("cards", nargs="+", type=Path)
    args = parser.parse_args(argv)
    status = 0
    for path in args.cards:
        card = json.loads(path.read_text(encoding="utf-8"))
        model = path.with_name(card.get("model_file") or path.with_suffix(".tflite").name)
        try:
            new = sealed(card, model.read_bytes())
        except (OSError, ValueError) as e:
            print(f"{path}: not sealed: {e}", file=sys.stderr)
            status = 1
            continue
        write_card(new, path)
        print(f"{path}: labels_sha256 {new['labels_sha256'][:12]}... ({', '.join(new['labels'])})")
    return status


if __name__ == "__main__":
    sys.exit(main())
