"""`moodcam bench` end to end on a short clip: the figures' structure, never their values (timings
belong in the benchmark's output, not in assertions on a shared machine)."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import cv2
import pytest

from moodcam.speed import cpu_model

ROOT = Path(__file__).resolve().parent.parent
CLIP = ROOT / "demo" / "clip.mp4"


@pytest.mark.parametrize(
    ("cpuinfo", "want"),
    [
        ("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\n", "AMD EPYC"),
        (  # a Pi 4 on 64-bit Pi OS: no `model name`, the board in `Model`
            "processor\t: 0\nBogoMIPS\t: 108.00\nCPU part\t: 0xd08\n\n"
            "Hardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n",
            "Raspberry Pi 4 Model B Rev 1.4",
        ),
        ("processor\t: 0\nHardware\t: BCM2835\n", "BCM2835"),
    ],
)
def test_cpu_model_names_the_processor(tmp_path: Path, cpuinfo: str, want: str) -> None:
    path = tmp_path / "cpuinfo"
    path.write_text(cpuinfo)
    assert cpu_model(path) == want


def test_cpu_model_without_cpuinfo_still_answers(tmp_path: Path) -> None:
    assert cpu_model(tmp_path / "absent") != ""


def short_clip(folder: Path, frames: int = 30) -> Path:
    """The demo clip's first frames, with their ground-truth boxes beside them as the bench expects."""
    cap = cv2.VideoCapture(str(CLIP))
    fps = cap.get(cv2.CAP_PROP_FPS) or 15
    out_path = folder / "short.avi"
    writer = None
    for _ in range(frames):
        ok, frame = cap.read()
        assert ok, f"{CLIP} has fewer than {frames} frames"
        if writer is None:
            h, w = frame.shape[:2]
            writer = cv2.VideoWriter(str(out_path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
        writer.write(frame)
    cap.release()
    writer.release()
    meta = json.loads(CLIP.with_suffix(".json").read_text())
    out_path.with_suffix(".json").write_text(json.dumps({"boxes": meta["boxes"][:frames]}))
    return out_path


def test_bench_writes_invoke_and_pipeline_figures(tmp_path: Path) -> None:
    clip = short_clip(tmp_path)
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "moodcam.cli", "bench", "--rounds", "2", "--passes", "1",
         "--clip", str(clip), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    results = json.loads(out.read_text())
    assert results["machine"]["cpu"] == cpu_model()
    ours = results["invoke"]["moodcam"]
    assert ours["runs"] == 2 * 50 and ours["median_ms"] > 0
    assert ours["model"].endswith("moodcam.tflite")
    assert ours["runtime_version"] == version(ours["runtime"])  # its PyPI name
    assert "peer" not in results["invoke"]  # none given: no ratio invented
    pipe = results["pipeline"]
    for kind in ("fast", "naive"):
        assert pipe[kind]["frames"] == 30
        assert 0 <= pipe[kind]["recall"] <= 100
        assert set(pipe[kind]["stage_median_ms"]) >= {"decode", "detect", "invoke"}
    assert f"invoke median {ours['median_ms']:.3f} ms" in proc.stdout
