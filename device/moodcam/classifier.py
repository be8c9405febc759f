"""Classify face crops with the int8 model, exactly as its card says to feed it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from moodcam.card import card_path_for, check_model_matches, load_card
from moodcam.errors import ModelError
from moodcam.files import FileRefused, check_regular
from moodcam.preprocess import prepare_face
from moodcam.runtime import load_interpreter

# Far above any face model a Pi runs (the shipped one is under a megabyte), far below what would
# exhaust a Pi's memory when a wrong file is named: the file is read whole before it is parsed.
MAX_MODEL_BYTES = 64 * 2**20


class Classifier:
    """Loads a model and its card, checks one against the other, scores faces.

    `scores(face)` takes any face crop (gray or BGR, any size) and returns probabilities in
    `labels` order. One interpreter, one thread by default: the Pi has other work to do.
    """

    def __init__(
        self,
        model_path: str | Path,
        card_path: str | Path | None = None,
        threads: int = 1,
        runtime: str = "auto",
    ) -> None:
        self.model_path = Path(model_path)
        self.card_path = Path(card_path) if card_path else card_path_for(self.model_path)
        try:  # /dev/zero or a FIFO named as the model is no model: say so, never read it
            check_regular(self.model_path)
        except FileNotFoundError:
            raise ModelError(f"{self.model_path}: model file not found") from None
        except FileRefused as e:
            raise ModelError(f"{self.model_path}: {e}") from None
        except OSError as e:
            raise ModelError(
                f"{self.model_path}: cannot read the model ({e.strerror or e})"
            ) from None
        self.card = load_card(self.card_path)
        # Read once: the bytes the card's digest is checked against are the bytes that run, even
        # if an upgrade replaces the file while the daemon starts.
        try:
            size = self.model_path.stat().st_size
            if size > MAX_MODEL_BYTES:
                raise ModelError(
                    f"{self.model_path}: {size} bytes is not a face model for this device "
                    f"(at most {MAX_MODEL_BYTES} bytes)"
                )
            model_bytes = self.model_path.read_bytes()
        except OSError as e:
            raise ModelError(
                f"{self.model_path}: cannot read the model ({e.strerror or e})"
            ) from None
        self.interpreter, self.runtime = load_interpreter(
            str(self.model_path), threads, runtime, model_content=model_bytes
        )
        check_model_matches(
            self.card, self.interpreter, self.model_path, self.card_path, model_bytes
        )
        self.labels: tuple[str, ...] = tuple(self.card["labels"])
        inp = self.interpreter.get_input_details()[0]
        out = self.interpreter.get_output_details()[0]
        self._in_index, self._out_index = inp["index"], out["index"]
        self._in_dtype = np.dtype(inp["dtype"])
        self._in_scale, self._in_zero = inp["quantization"]
        self._out_scale, self._out_zero = out["quantization"]
        self.face_size = int(inp["shape"][1])
        margin = self.card["preprocessing"].get("crop_margin", 0.0)
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 <= margin < 2:
            # A margin that is not a small number would crop nonsense (or crash) on every face.
            raise ModelError(f"{self.card_path}: preprocessing crop_margin {margin!r} is not 0..2")
        self.margin = float(margin)

    def quantize(self, face: np.ndarray) -> np.ndarray:
        """A face_size x face_size uint8 face as the model's input tensor (batch of one)."""
        x = face.astype(np.float32)
        if self._in_dtype in (np.int8, np.uint8):
            info = np.iinfo(self._in_dtype)
            x = np.clip(np.round(x / self._in_scale + self._in_zero), info.min, info.max)
        return x.astype(self._in_dtype).reshape(1, self.face_size, self.face_size, 1)

    def invoke(self, tensor: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self._in_index, tensor)
        self.interpreter.invoke()
        raw = self.interpreter.get_tensor(self._out_index)[0]
        if self._out_scale:
            return (raw.astype(np.float32) - self._out_zero) * self._out_scale
        return raw.astype(np.float32)

    def probabilities(self, tensor: np.ndarray) -> np.ndarray:
        """Invoke on a quantized face; probabilities renormalised (int8 rounding loses a little mass)."""
        p = self.invoke(tensor)
        total = float(p.sum())
        return (
            p / total
            if total > 0
            else np.full(len(self.labels), 1.0 / len(self.labels), np.float32)
        )

    def scores(self, face: np.ndarray) -> np.ndarray:
        """Probabilities in `labels` order for a face crop of any size and channel count."""
        return self.probabilities(self.quantize(prepare_face(face, self.face_size)))

    def classify(self, face: np.ndarray) -> tuple[str, dict[str, float]]:
        p = self.scores(face)
        return self.labels[int(p.argmax())], {
            lbl: float(v) for lbl, v in zip(self.labels, p, strict=False)
        }

    def time_invoke(self, repeats: int = 500, warmup: int = 50) -> np.ndarray:
        """Seconds per invoke (interpreter only), over `repeats` runs on a fixed mid-grey face."""
        import time

        tensor = self.quantize(np.full((self.face_size, self.face_size), 128, np.uint8))
        for _ in range(warmup):
            self.invoke(tensor)
        times = np.empty(repeats)
        for i in range(repeats):
            t0 = time.perf_counter()
            self.invoke(tensor)
            times[i] = time.perf_counter() - t0
        return times
