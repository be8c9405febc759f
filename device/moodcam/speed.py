"""Speed measured here and now: what `moodcam bench` runs (moodcam.commands.bench) and writes
to a JSON file. Not to be confused with bench/ (the figures of every benchmark, and the desktop's
benchmark scripts) or `make bench` (this, then the report and stop-time benchmarks).

Timings are medians over many runs, interleaved with the baseline they are compared to, so a
noisy shared machine slows both alike and the ratio stays meaningful.
"""

from __future__ import annotations

import json
import os
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

    def scores(self, face: np.ndarray, classes: tuple[str, ...]) -> np.ndarray:
        """The peer's outputs for `classes`, in that order (fer's are in FER2013 order)."""
        return self.invoke(self.tensor(face))[peer_columns(classes)]


def peer_columns(classes: tuple[str, ...]) -> list[int]:
    """Where each of `classes` is among the peer's outputs (FER2013's order)."""
    from moodcam.labels import FER2013_CLASSES

    return [FER2013_CLASSES.index(c) for c in classes]


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
        "moodcam": _summary(ours)
        | {
            "model": str(clf.model_path),
            "runtime": clf.runtime,
            # Kernels change between releases (the peer's invoke moves more than ours across
            # ai-edge-litert versions), so a ratio is only comparable with its version beside it.
            "runtime_version": runtime_version(clf.runtime),
        }
    }
    if peer:
        result["peer"] = _summary(theirs) | {"model": "fer 25.10.3 emotion_model_quantized.tflite"}
        result["moodcam_over_peer_median"] = round(
            result["moodcam"]["median_ms"] / result["peer"]["median_ms"], 3
        )
    return result


def runtime_version(runtime: str) -> str:
    """The installed version of a TFLite runtime (its name in moodcam.runtime is its PyPI name)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(runtime)
    except PackageNotFoundError:
        return "unknown"


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The processor's name as Linux reports it (x86: `model name`; a Pi: `Model`, the board),
    so figures from two hosts of one architecture are not mistaken for a change of code."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return platform.processor() or "unknown"
    for key in ("model name", "Model", "Hardware"):
        for line in text.splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key and value.strip():
                return value.strip()
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    """Where a figure was measured (written beside every benchmark result)."""
    return {
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_results(results: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


class NaiveDetector:
    """The naive pipeline's detector: full-frame Haar (1.1, 5) on every frame, as `fer` does."""

    def __init__(self) -> None:
        from moodcam.detector import load_cascade

        self.cascade = load_cascade()

    def detect_frame(self, frame: Any) -> list:
        from moodcam.detector import naive_detect
        from moodcam.preprocess import to_gray

        return naive_detect(to_gray(frame.image), self.cascade)


def _recall(found: list, truth: list, thresh: float = 0.4) -> tuple[int, int]:
    from moodcam.detector import iou

    hits = sum(1 for t in truth if any(iou(tuple(t), tuple(f)) >= thresh for f in found))
    return hits, len(truth)


def _run_clip(
    kind: str, clf: Classifier, cfg: Any, clip: Path, truth: list | None, log_dir: Path
) -> dict:
    """One pass over the clip; per-frame seconds of each stage, the whole, and recall."""
    from moodcam.config import LogConfig
    from moodcam.daemon import Pipeline
    from moodcam.detector import FaceDetector
    from moodcam.sinks.moodlog import MoodLogWriter
    from moodcam.sources import open_source
    from moodcam.tracker import MoodTracker

    detector = FaceDetector(cfg.detector) if kind == "fast" else NaiveDetector()
    sink = MoodLogWriter(LogConfig(path=str(log_dir / f"{kind}.jsonl"), interval_s=1.0))
    pipe = Pipeline(detector, clf, MoodTracker(cfg.tracker, clf.labels), [sink], profile=True)
    source = open_source(type(cfg.source)(uri=str(clip)))
    total, hits, faces = [], 0, 0
    try:
        while True:
            t0 = time.perf_counter()
            frame = source.read()
            t1 = time.perf_counter()
            if frame is None:
                break
            update = pipe.process(frame)
            total.append(time.perf_counter() - t0)
            pipe.times.add("decode", t1 - t0)
            if truth is not None and frame.index < len(truth):
                h, n = _recall([f.box for f in update.faces], truth[frame.index])
                hits, faces = hits + h, faces + n
    finally:
        source.close()
        sink.close()
    return {"total": total, "stages": pipe.times.seconds, "hits": hits, "faces": faces}


def bench_pipeline(clf: Classifier, cfg: Any, clip: Path, passes: int = 3) -> dict[str, Any]:
    """Fast and naive pipelines over the same clip, alternating pass by pass, one thread."""
    import tempfile

    import cv2

    cv2.setNumThreads(1)  # one core: OpenCV's cascade would otherwise spread over all of them
    meta_path = clip.with_suffix(".json")
    truth = json.loads(meta_path.read_text()).get("boxes") if meta_path.is_file() else None
    runs: dict[str, list[dict]] = {"fast": [], "naive": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(passes):
            for kind in ("fast", "naive"):
                runs[kind].append(_run_clip(kind, clf, cfg, clip, truth, Path(tmp)))
    out: dict[str, Any] = {"clip": str(clip), "passes": passes, "threads": 1}
    for kind, rs in runs.items():
        total = np.concatenate([r["total"] for r in rs]) * 1000
        stages = {
            s: round(float(np.median(np.concatenate([r["stages"][s] for r in rs]) * 1000)), 4)
            for s in rs[0]["stages"]
        }
        hits, faces = sum(r["hits"] for r in rs), sum(r["faces"] for r in rs)
        out[kind] = {
            "frames": len(total),
            "median_ms": round(float(np.median(total)), 3),
            "mean_ms": round(float(total.mean()), 3),
            "fps": round(1000.0 / float(total.mean()), 1),
            "stage_median_ms": stages,
            "recall": round(100.0 * hits / faces, 2) if faces else None,
        }
    out["speedup"] = round(out["naive"]["mean_ms"] / out["fast"]["mean_ms"], 2)
    out["speedup_median"] = round(out["naive"]["median_ms"] / out["fast"]["median_ms"], 2)
    return out
