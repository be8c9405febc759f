"""`moodcam bench`: speed figures measured here and now, written to a JSON file.

Timings are medians over many runs, interleaved with the baseline they are compared to, so a
noisy shared machine slows both alike and the ratio stays meaningful.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from moodcam.classifier import Classifier


class PeerModel:
    """The `fer` package's emotion_model_quantized.tflite, fed as fer feeds it (64x64, [-1, 1])."""

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        from moodcam.runtime import load_interpreter

        self.interpreter, self.runtime = load_interpreter(str(path), threads)
        self.inp = self.interpreter.get_input_details()[0]
        self.out = self.interpreter.get_output_details()[0]
        self.size = int(self.inp["shape"][1])

    def tensor(self, face: np.ndarray) -> np.ndarray:
        import cv2

        x = cv2.resize(face, (self.size, self.size)).astype(np.float32)
        return ((x / 255.0 - 0.5) * 2.0).reshape(1, self.size, self.size, 1)

    def invoke(self, tensor: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self.inp["index"], tensor)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.out["index"])[0]


def _summary(seconds: list[float] | np.ndarray) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {
        "median_ms": round(float(np.median(ms)), 4),
        "p90_ms": round(float(np.percentile(ms, 90)), 4),
        "runs": len(ms),
    }


def bench_invoke(
    clf: Classifier, peer: PeerModel | None, rounds: int = 40, per_round: int = 50
) -> dict[str, Any]:
    """Single-thread invoke latency of our model and the peer, interleaved round by round."""
    rng = np.random.default_rng(0)
    face = rng.integers(0, 256, (clf.face_size, clf.face_size), dtype=np.uint8)
    ours_t, peer_t = clf.quantize(face), (peer.tensor(face) if peer else None)
    ours, theirs = [], []
    for _ in range(5):  # warm caches and XNNPACK's packed weights
        clf.invoke(ours_t)
        if peer:
            peer.invoke(peer_t)
    for _ in range(rounds):
        for _ in range(per_round):
            t0 = time.perf_counter()
            clf.invoke(ours_t)
            ours.append(time.perf_counter() - t0)
        if peer:
            for _ in range(per_round):
                t0 = time.perf_counter()
                peer.invoke(peer_t)
                theirs.append(time.perf_counter() - t0)
    result: dict[str, Any] = {
        "moodcam": _summary(ours) | {"model": str(clf.model_path), "runtime": clf.runtime}
    }
    if peer:
        result["peer"] = _summary(theirs) | {"model": "fer 25.10.3 emotion_model_quantized.tflite"}
        result["moodcam_over_peer_median"] = round(
            result["moodcam"]["median_ms"] / result["peer"]["median_ms"], 3
        )
    return result


def machine() -> dict[str, Any]:
    import os

    return {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_results(results: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
