"""The shipped model and the daemon on both TFLite runtimes the device may use.

64-bit Pi OS (and this PC) runs ai-edge-litert; 32-bit Pi OS Bookworm gets tflite-runtime 2.14,
which needs numpy<2. `make test` builds a second venv with that runtime (MOODCAM_TFLITE_VENV);
these tests run the device's own code in it, against the main venv's ai-edge-litert."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "moodcam.tflite"
FACES = sorted((ROOT / "tests" / "fixtures" / "faces").glob("*.png"))
VENV = Path(os.environ.get("MOODCAM_TFLITE_VENV", ROOT / ".venv-tflite"))
OTHER = VENV / "bin" / "python"
pytestmark = pytest.mark.skipif(
    not OTHER.exists(),
    reason=f"no tflite-runtime venv at {VENV}: `make test` makes one (tflite-runtime 2.14 has "
    "wheels up to Python 3.11, the Python of Pi OS Bookworm)",
)

SCORE = """
import json, sys, cv2, numpy
from moodcam.classifier import Classifier
clf = Classifier(sys.argv[1], runtime=sys.argv[2])
faces = [cv2.imread(p, cv2.IMREAD_UNCHANGED) for p in sys.argv[3:]]
print(json.dumps({"runtime": clf.runtime, "numpy": numpy.__version__,
                  "scores": [clf.scores(f).tolist() for f in faces]}))
"""


def scores_in(python: str | Path, runtime: str) -> dict:
    out = subprocess.run([str(python), "-c", SCORE, str(MODEL), runtime, *map(str, FACES)],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_both_runtimes_give_the_same_labels_within_two_int8_steps() -> None:
    litert = scores_in(sys.executable, "ai-edge-litert")
    tflite = scores_in(OTHER, "tflite-runtime")
    assert litert["runtime"] == "ai-edge-litert" and tflite["runtime"] == "tflite-runtime"
    assert int(tflite["numpy"].split(".")[0]) < 2  # what tflite-runtime 2.14 needs
    a, b = np.array(litert["scores"]), np.array(tflite["scores"])
    assert a.shape == b.shape == (len(FACES), 4)
    assert (a.argmax(axis=1) == b.argmax(axis=1)).all()
    # The output is int8 with a scale of 1/256; the two runtimes' int8 kernels (XNNPACK of
    # different versions) round intermediate sums apart, which moves a score by a step or two.
    assert np.abs(a - b).max() <= 3 / 256


def test_the_daemon_runs_the_clip_on_tflite_runtime(tmp_path: Path) -> None:
    log, summary = tmp_path / "mood.jsonl", tmp_path / "summary.json"
    proc = subprocess.run(
        [str(VENV / "bin" / "moodcam"), "run", "--model", str(MODEL), "--source",
         str(ROOT / "demo" / "clip.mp4"), "--log", str(log), "--log-interval", "0.5", "--quiet",
         "--summary-json", str(summary)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "on tflite-runtime" in proc.stderr
    s = json.loads(summary.read_text())
    assert s["frames"] > 0 and s["faces"] > 0 and s["changes"] > 0
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines and {rec["mood"] for rec in lines} - {None}
