"""Frame sources against real OpenCV and real files; picamera2 against a fake module that follows
picamera2's documented API (array shapes and byte orders from the Picamera2 manual, Appendix A)."""

from __future__ import annotations

import itertools
import logging
import os
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import pytest

from demo.scenes import FaceMotion, load_faces, make_clip, make_scene, write_clip
from moodcam.config import SourceConfig
from moodcam.sources import (
    MAX_CONSECUTIVE_BAD_FRAMES,
    STREAM_TIMEOUT_MS,
    CaptureSource,
    FolderSource,
    LoopingSource,
    Picamera2Source,
    SourceError,
    VideoFileSource,
    backoff_delays,
    lores_size,
    open_source,
)

CLIP_FRAMES, CLIP_FPS = 30, 25.0


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    face = load_faces()[0][1]
    clip = make_clip([FaceMotion(face, (50, 100, 150, 150), (400, 150, 150, 150))],
                     CLIP_FRAMES, seed=3, fps=CLIP_FPS)  # fmt: skip
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", clip.frames, CLIP_FPS)


class FakeClock:
    """time.time/monotonic plus a sleep that advances it, recording every sleep."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.t += s


# --------------------------------------------------------------------------- folder


def _write_folder(d: Path) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    imgs = {n: rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
            for n in ("frame_01.png", "frame_02.png", "frame_10.png")}  # fmt: skip
    for name, img in imgs.items():
        assert cv2.imwrite(str(d / name), img)
    (d / "frame_05.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    (d / "notes.txt").write_text("not an image, ignored")
    (d / ".hidden.png").write_bytes(b"ignored")
    return imgs


def test_folder_order_timestamps_and_corrupt_skip(tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    imgs = _write_folder(tmp_path)
    with caplog.at_level(logging.WARNING, logger="moodcam.sources"):
        src = open_source(SourceConfig(uri=str(tmp_path), fps=10.0))
        assert isinstance(src, FolderSource) and not src.live
        frames = list(src)
    # Sorted by name: frame_01, frame_02, frame_05 (corrupt, skipped), frame_10.
    assert [f.index for f in frames] == [0, 1, 3]
    assert [f.t for f in frames] == pytest.approx([0.0, 0.1, 0.3])
    for f, name in zip(frames, ("frame_01.png", "frame_02.png", "frame_10.png"), strict=True):
        np.testing.assert_array_equal(f.image, imgs[name])
    assert src.skipped == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "frame_05.png" in warnings[0].getMessage()
    assert src.read() is None  # stays at the end
    src.close()


def test_looped_folder_counts_on_across_passes(tmp_path: Path) -> None:
    imgs = _write_folder(tmp_path)
    src = open_source(SourceConfig(uri=str(tmp_path), fps=10.0, loop=True))
    assert isinstance(src, LoopingSource) and not src.live and "looped" in src.description
    frames = [src.read() for _ in range(7)]
    src.close()
    assert src.read() is None  # closed: ends
    # Each pass: frame_01 (t 0), frame_02 (0.1), frame_10 (0.3; frame_05 is corrupt). The next
    # pass starts one frame interval after the last frame: 0.4, then 0.5, 0.7; 0.8 ...
    assert [f.t for f in frames] == pytest.approx([0.0, 0.1, 0.3, 0.4, 0.5, 0.7, 0.8])
    assert [f.index for f in frames] == [0, 1, 3, 4, 5, 7, 8]
    names = ["frame_01.png", "frame_02.png", "frame_10.png"]
    for f, name in zip(frames, names * 3, strict=False):
        np.testing.assert_array_equal(f.image, imgs[name])
    assert src.passes == 3 and src.skipped == 2  # the corrupt image in passes 1 and 2


def test_looped_video_runs_on_and_cameras_ignore_loop(clip_path: Path) -> None:
    src = open_source(SourceConfig(uri=str(clip_path), loop=True))
    frames = [src.read() for _ in range(2 * CLIP_FRAMES + 5)]
    src.close()
    ts = [f.t for f in frames]
    assert all(b > a for a, b in itertools.pairwise(ts))
    assert ts[CLIP_FRAMES] == pytest.approx(CLIP_FRAMES / CLIP_FPS, abs=1e-3)
    assert [f.index for f in frames] == list(range(2 * CLIP_FRAMES + 5))
    np.testing.assert_array_equal(frames[CLIP_FRAMES].image, frames[0].image)
    assert src.passes == 3
    # A live source has no end to loop from: `loop` leaves it as it is.
    with pytest.raises(SourceError) as e:
        open_source(SourceConfig(uri="/dev/video99", loop=True))
    assert e.value.kind == "camera"


def test_folder_without_images_is_missing(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(SourceError) as e:
        open_source(SourceConfig(uri=str(tmp_path)))
    assert e.value.kind == "missing" and str(tmp_path) in str(e.value)


def test_folder_realtime_paces_to_media_time(tmp_path: Path) -> None:
    _write_folder(tmp_path)
    clock = FakeClock()
    src = FolderSource(tmp_path, SourceConfig(fps=10.0, realtime=True), clock=clock,
                       sleep=clock.sleep)  # fmt: skip
    assert len(list(src)) == 3
    # t = 0, 0.1, 0.3 with an instant decoder: waits of 0.1 then 0.2 s.
    assert clock.sleeps == pytest.approx([0.1, 0.2])
    # open_source hands its sleep (e.g. a watchdog-feeding one) and clock to the source.
    other = FakeClock()
    paced = open_source(SourceConfig(uri=str(tmp_path), fps=10.0, realtime=True),
                        sleep=other.sleep, clock=other)  # fmt: skip
    assert len(list(paced)) == 3 and other.sleeps == pytest.approx([0.1, 0.2])
    fast = FolderSource(tmp_path, SourceConfig(fps=10.0), clock=clock, sleep=clock.sleep)
    clock.sleeps.clear()
    list(fast)
    assert clock.sleeps == []


# --------------------------------------------------------------------------- video file


def test_video_file_frames_and_media_time(clip_path: Path) -> None:
    src = open_source(SourceConfig(uri=str(clip_path), fps=5.0))
    assert isinstance(src, VideoFileSource) and not src.live
    assert src.fps == pytest.approx(CLIP_FPS)  # from the container, not cfg.fps
    frames = list(src)
    assert len(frames) == CLIP_FRAMES
    assert [f.index for f in frames] == list(range(CLIP_FRAMES))
    ts = [f.t for f in frames]
    assert all(b > a for a, b in itertools.pairwise(ts))
    assert ts == pytest.approx([i / CLIP_FPS for i in range(CLIP_FRAMES)], abs=1e-3)
    assert frames[0].image.shape == (480, 640, 3) and frames[0].image.dtype == np.uint8
    assert frames[0].gray is None
    assert src.skipped == 0
    assert src.read() is None
    src.close()
    assert src.read() is None


def test_video_file_realtime(clip_path: Path) -> None:
    clock = FakeClock()
    src = VideoFileSource(clip_path, SourceConfig(realtime=True), clock=clock, sleep=clock.sleep)
    list(src)
    assert len(clock.sleeps) == CLIP_FRAMES - 1
    assert sum(clock.sleeps) == pytest.approx((CLIP_FRAMES - 1) / CLIP_FPS, abs=1e-3)


class FlakyCapture:
    """A real cv2.VideoCapture whose reads fail on chosen frames, the two ways a decoder can:
    ok with no image, or not ok although the position moved on."""

    def __init__(self, path: str, empty: set[int], failed: set[int]) -> None:
        self.cap = cv2.VideoCapture(path)
        self.empty, self.failed, self.n = empty, failed, 0

    def read(self) -> tuple[bool, Any]:
        ok, img = self.cap.read()
        i, self.n = self.n, self.n + 1
        if ok and i in self.empty:
            return True, None
        if ok and i in self.failed:
            return False, None
        return ok, img

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cap, name)


def test_video_file_skips_and_counts_bad_frames(clip_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    src = VideoFileSource(clip_path, SourceConfig(),
                          capture_factory=lambda p: FlakyCapture(p, {3, 4}, {10}))  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="moodcam.sources"):
        frames = list(src)
    assert src.skipped == 3
    assert len(frames) == CLIP_FRAMES - 3
    assert [f.index for f in frames] == [i for i in range(CLIP_FRAMES) if i not in (3, 4, 10)]
    ts = [f.t for f in frames]
    assert all(b > a for a, b in itertools.pairwise(ts))
    assert sum("could not be decoded" in r.getMessage() for r in caplog.records) == 3


def test_missing_video_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as e:
        open_source(SourceConfig(uri=str(tmp_path / "nope.mp4")))
    assert e.value.kind == "missing" and e.value.exit_code == 6  # the CLI's EXIT_SOURCE
    assert "nope.mp4" in str(e.value) and "no such file" in str(e.value)


@pytest.mark.parametrize("name", ["notes.txt", "clip.mp4"])
def test_non_video_file(tmp_path: Path, name: str) -> None:
    p = tmp_path / name
    p.write_bytes(b"definitely not a video\n" * 200 + bytes(range(256)) * 20)
    with pytest.raises(SourceError) as e:
        open_source(SourceConfig(uri=str(p)))
    assert e.value.kind == "unreadable"
    assert name in str(e.value) and "cannot decode as video" in str(e.value)


# --------------------------------------------------------------------------- live OpenCV


def test_device_nodes_are_cameras_and_files_under_dev_are_videos() -> None:
    # A /dev/v4l/by-id/... link is how people name a USB camera that keeps its name across
    # reboots; /dev/null stands in for the device node it points to (a character device that
    # VideoCapture cannot open as a camera). A plain file under /dev/shm is still a video file.
    link = Path(f"/dev/shm/moodcam-test-camera-{os.getpid()}")
    junk = Path(f"/dev/shm/moodcam-test-clip-{os.getpid()}.mp4")
    link.symlink_to("/dev/null")
    junk.write_bytes(b"not a video\n" * 100)
    try:
        for node in ("/dev/null", str(link)):
            with pytest.raises(SourceError) as e:
                open_source(SourceConfig(uri=node))
            assert e.value.kind == "camera" and "cannot open camera" in str(e.value)
        with pytest.raises(SourceError) as e:
            open_source(SourceConfig(uri=str(junk)))
        assert e.value.kind == "unreadable"
    finally:
        link.unlink()
        junk.unlink()


def test_missing_cameras_and_streams() -> None:
    with pytest.raises(SourceError) as e:
        open_source(SourceConfig(uri="/dev/video93"))
    assert e.value.kind == "camera" and str(e.value) == "/dev/video93: no such camera"
    with pytest.raises(SourceError) as e:
        open_source(SourceConfig(uri="93"))
    assert e.value.kind == "camera" and "camera 93" in str(e.value)
    # Nothing listens on port 9: refused at once. The password never reaches a message.
    with pytest.raises(SourceError) as e:
        open_source(SourceConfig(uri="rtsp://user:s3cret@127.0.0.1:9/live"))
    assert e.value.kind == "camera" and "127.0.0.1:9" in str(e.value)
    assert "s3cret" not in str(e.value)


class StreamServer:
    """A TCP server on 127.0.0.1 that serves each of its first `streams` connections `frames`
    MJPEG frames over HTTP (multipart/x-mixed-replace, as IP cameras do) and then says nothing,
    keeping it open: a camera that stalls. Later connections it accepts and never answers."""

    def __init__(self, frames: int = 0, streams: int = 0) -> None:
        self.frames, self.streams = frames, streams
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        jpg = cv2.imencode(".jpg", np.full((120, 160, 3), 128, np.uint8))[1].tobytes()
        part = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpg)
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed
                return
            self.connections.append(conn)
            if len(self.connections) <= self.streams:
                conn.recv(65536)  # the request
                conn.sendall(b"HTTP/1.0 200 OK\r\n"
                             b"Content-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n")  # fmt: skip
                for _ in range(self.frames):
                    conn.sendall(part + jpg + b"\r\n")

    def close(self) -> None:
        self.sock.close()
        for conn in self.connections:
            conn.close()


def in_thread(fn: Any, bound_s: float) -> Any:
    """fn() run in a thread; fails if it has not returned within `bound_s` (a liveness bound
    far above the stream timeout, not a speed check: FFmpeg's own wait is 30 s)."""
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(fn())
        except BaseException as e:  # handed to the test
            result.append(e)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(bound_s)
    assert not worker.is_alive(), f"still blocked after {bound_s} s"
    return result[0]


def test_a_silent_stream_fails_to_open_instead_of_hanging() -> None:
    server = StreamServer()
    try:
        uri = f"rtsp://127.0.0.1:{server.port}/live"
        got = in_thread(lambda: open_source(SourceConfig(uri=uri)), 4 * STREAM_TIMEOUT_MS / 1000)
    finally:
        server.close()
    assert isinstance(got, SourceError) and got.kind == "camera"
    assert f"127.0.0.1:{server.port}" in str(got) and "cannot open stream" in str(got)


def test_a_stream_that_stalls_reconnects_and_is_reported_lost() -> None:
    server = StreamServer(frames=20, streams=2)
    clock = FakeClock()
    health: list[str] = []
    try:
        src = CaptureSource(f"http://127.0.0.1:{server.port}/video.mjpg", SourceConfig(),
                            clock=clock, sleep=clock.sleep, reconnect_attempts=1)  # fmt: skip
        src.on_health = lambda state, detail: health.append(state)

        def read_until_lost() -> tuple[int, Any]:
            n = 0
            try:
                while src.read() is not None:
                    n += 1
            except SourceError as e:
                return n, e
            return n, None

        # A stall, a reconnect that brings the frames back, a stall, a reconnect to silence.
        n, error = in_thread(read_until_lost, 8 * STREAM_TIMEOUT_MS / 1000)
        src.close()
    finally:
        server.close()
    assert n == 40 and len(server.connections) == 3
    assert isinstance(error, SourceError) and error.kind == "camera"
    assert health == ["degraded", "ok", "degraded", "lost"]


def test_backoff_delays() -> None:
    assert backoff_delays(30.0) == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert backoff_delays(3.0, 4) == [0.5, 1, 2, 3]


def test_live_capture_reconnects_then_gives_up(clip_path: Path, tmp_path: Path) -> None:
    # A real VideoCapture over a file stands in for a stream: at its end reads fail, like a
    # camera that went away; reopening it "reconnects".
    path = tmp_path / "stream.mp4"
    path.write_bytes(clip_path.read_bytes())
    clock = FakeClock()
    src = CaptureSource(str(path), SourceConfig(reconnect_max_s=2.0), clock=clock,
                        sleep=clock.sleep, reconnect_attempts=4)  # fmt: skip
    assert src.live
    frames = [src.read() for _ in range(CLIP_FRAMES)]
    assert all(f is not None for f in frames) and clock.sleeps == []
    again = src.read()  # the "stream" dropped: one backoff, reopened, first frame again
    assert again is not None and again.index == CLIP_FRAMES
    assert clock.sleeps == [0.5]
    assert again.t == clock.t  # live: wall-clock time of capture
    np.testing.assert_array_equal(again.image, frames[0].image)
    for _ in range(CLIP_FRAMES - 1):
        src.read()
    path.unlink()  # now it never comes back
    clock.sleeps.clear()
    with pytest.raises(SourceError) as e:
        src.read()
    assert e.value.kind == "camera" and "4 reconnect attempts" in str(e.value)
    assert clock.sleeps == [0.5, 1.0, 2.0, 2.0]
    src.close()
    assert src.read() is None


# --------------------------------------------------------------------------- picamera2


def _stride(width: int) -> int:
    return (width + 63) // 64 * 64  # YUV420's alignment in the manual's format table


class FakePicamera2:
    """Follows picamera2's documented API: create_video_configuration(main=, lores=, controls=)
    returns a configuration; configure(); start(); capture_array(name) and
    capture_arrays(names) -> (arrays, metadata); stop(); close(). Array shapes as documented:
    RGB888 -> (h, w, 3) in [B, G, R] order; YUV420 -> (h*3/2, stride), Y plane in the first h rows,
    padding on the right when the stride is wider than the image."""

    instances: ClassVar[list[FakePicamera2]] = []
    scene: ClassVar[np.ndarray] = np.zeros((480, 640, 3), np.uint8)
    fail_captures = 0  # the next N captures raise, as a camera that went away would
    corrupt_captures = 0  # the next N captures return an empty main array (a torn buffer)
    fail_opens = 0

    def __init__(self, camera_num: int = 0) -> None:
        if FakePicamera2.fail_opens:
            FakePicamera2.fail_opens -= 1
            raise IndexError("list index out of range")  # what picamera2 raises with no camera
        self.calls: list[tuple[str, Any]] = []
        self.config: dict[str, Any] | None = None
        self.started = False
        self.closed = False
        FakePicamera2.instances.append(self)

    def create_video_configuration(self, main: dict | None = None, lores: dict | None = None,
                                   raw: dict | None = None, transform: Any = None,
                                   colour_space: Any = None, buffer_count: int = 6,
                                   controls: dict | None = None, display: str | None = "main",
                                   encode: str | None = "main", queue: bool = True,
                                   sensor: dict | None = None,
                                   use_case: str | None = None) -> dict[str, Any]:  # fmt: skip
        self.calls.append(("create_video_configuration",
                           {"main": main, "lores": lores, "controls": controls}))  # fmt: skip
        return {
            "use_case": "video",
            "buffer_count": buffer_count,
            "main": {"format": "XBGR8888", "size": (1280, 720), **(main or {})},
            "lores": dict(lores) if lores else None,
            "controls": {"NoiseReductionMode": 1, **(controls or {})},
            "display": display,
            "encode": encode,
        }

    def configure(self, config: dict[str, Any]) -> None:
        self.calls.append(("configure", config))
        self.config = config

    def start(self) -> None:
        assert self.config is not None, "start() before configure()"
        self.calls.append(("start", None))
        self.started = True

    def _array(self, name: str) -> np.ndarray:
        assert self.started and not self.closed
        assert self.config is not None
        if FakePicamera2.fail_captures:
            FakePicamera2.fail_captures -= 1
            raise RuntimeError("Camera frontend has timed out!")
        if FakePicamera2.corrupt_captures and name == "main":
            FakePicamera2.corrupt_captures -= 1
            return np.zeros((0, 0, 3), np.uint8)
        stream = self.config[name]
        w, h = stream["size"]
        img = cv2.resize(self.scene, (w, h), interpolation=cv2.INTER_AREA)
        if stream["format"] == "RGB888":
            return img  # [B, G, R] per pixel: OpenCV's BGR
        assert stream["format"] == "YUV420"
        yuv = np.full((h * 3 // 2, _stride(w)), 128, np.uint8)
        yuv[:h, w:] = 0xEE  # stride padding: must never reach the detector
        yuv[:h, :w] = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        return yuv

    def capture_array(self, name: str = "main") -> np.ndarray:
        self.calls.append(("capture_array", name))
        return self._array(name)

    def stop(self) -> None:
        self.calls.append(("stop", None))
        self.started = False

    def close(self) -> None:
        self.calls.append(("close", None))
        self.closed = True


class FakePicamera2WithArrays(FakePicamera2):
    def capture_arrays(self, names: list[str]) -> tuple[list[np.ndarray], dict[str, Any]]:
        self.calls.append(("capture_arrays", list(names)))
        return [self._array(n) for n in names], {"SensorTimestamp": 123456789}


class FakeModule:
    def __init__(self, cls: type[FakePicamera2]) -> None:
        self.Picamera2 = cls


@pytest.fixture
def fake_picamera2() -> FakeModule:
    FakePicamera2.instances = []
    FakePicamera2.fail_captures = FakePicamera2.fail_opens = FakePicamera2.corrupt_captures = 0
    face = load_faces()[0][1]
    FakePicamera2.scene = make_scene([(face, (200, 120, 160, 160))], seed=5)
    return FakeModule(FakePicamera2WithArrays)


def test_picamera2_configuration_and_frames(fake_picamera2: FakeModule) -> None:
    clock = FakeClock()
    cfg = SourceConfig(uri="picamera2", width=640, height=480, fps=15.0)
    src = Picamera2Source(cfg, lores_width=200, picamera2_module=fake_picamera2, clock=clock)
    assert src.live and "picamera2" in src.description
    cam = FakePicamera2.instances[0]
    name, req = cam.calls[0]
    assert name == "create_video_configuration"
    assert req == {"main": {"size": (640, 480), "format": "RGB888"},
                   "lores": {"size": (200, 150), "format": "YUV420"},
                   "controls": {"FrameRate": 15.0}}  # fmt: skip
    assert [c[0] for c in cam.calls[1:3]] == ["configure", "start"]
    assert cam.calls[1][1]["lores"] == {"size": (200, 150), "format": "YUV420"}

    f = src.read()
    assert f is not None and f.index == 0 and f.t == clock.t
    # One request for both streams, so image and gray are the same instant.
    assert cam.calls[-1] == ("capture_arrays", ["main", "lores"])
    np.testing.assert_array_equal(f.image, FakePicamera2.scene)  # BGR passed through
    assert f.gray is not None and f.gray.shape == (150, 200) and f.gray.flags.c_contiguous
    expect = cv2.cvtColor(cv2.resize(FakePicamera2.scene, (200, 150), interpolation=cv2.INTER_AREA),
                          cv2.COLOR_BGR2GRAY)  # fmt: skip
    np.testing.assert_array_equal(f.gray, expect)  # the Y plane, stride padding cut off
    assert src.read().index == 1  # type: ignore[union-attr]

    src.close()
    assert [c[0] for c in cam.calls[-2:]] == ["stop", "close"]
    assert src.read() is None
    src.close()  # idempotent
    assert [c[0] for c in cam.calls].count("close") == 1


def test_picamera2_without_capture_arrays(fake_picamera2: FakeModule) -> None:
    src = Picamera2Source(SourceConfig(), picamera2_module=FakeModule(FakePicamera2))
    f = src.read()
    assert f is not None and f.gray is not None and f.gray.shape == lores_size((640, 480))[::-1]
    cam = FakePicamera2.instances[0]
    assert cam.calls[-2:] == [("capture_array", "main"), ("capture_array", "lores")]
    src.close()


def test_picamera2_reconnects_and_gives_up(fake_picamera2: FakeModule) -> None:
    clock = FakeClock()
    src = Picamera2Source(SourceConfig(reconnect_max_s=1.0), picamera2_module=fake_picamera2,
                          clock=clock, sleep=clock.sleep, reconnect_attempts=3)  # fmt: skip
    FakePicamera2.fail_captures = 2  # the read fails, and the first restart's capture too
    f = src.read()
    assert f is not None and clock.sleeps == [0.5, 1.0]
    first, *_, last = FakePicamera2.instances
    assert first.closed and ("stop", None) in first.calls and not last.closed
    assert len(FakePicamera2.instances) == 3  # restarted twice
    FakePicamera2.fail_captures = 100
    clock.sleeps.clear()
    with pytest.raises(SourceError) as e:
        src.read()
    assert e.value.kind == "camera" and clock.sleeps == [0.5, 1.0, 1.0]
    src.close()


def test_picamera2_skips_corrupt_buffers_without_a_restart(fake_picamera2: FakeModule) -> None:
    clock = FakeClock()
    src = Picamera2Source(SourceConfig(), picamera2_module=fake_picamera2, clock=clock,
                          sleep=clock.sleep)  # fmt: skip
    FakePicamera2.corrupt_captures = 3
    f = src.read()
    assert f is not None and f.image.shape == (480, 640, 3)
    assert src.skipped == 3 and len(FakePicamera2.instances) == 1 and clock.sleeps == []
    # Nothing but corrupt buffers: that is a broken camera, restarted with backoff.
    FakePicamera2.corrupt_captures = MAX_CONSECUTIVE_BAD_FRAMES + 1
    assert src.read() is not None
    assert len(FakePicamera2.instances) == 2 and clock.sleeps == [0.5]
    src.close()


def test_picamera2_no_camera(fake_picamera2: FakeModule) -> None:
    FakePicamera2.fail_opens = 1
    with pytest.raises(SourceError) as e:
        open_source(SourceConfig(uri="picamera2"), picamera2_module=fake_picamera2)
    assert e.value.kind == "camera" and "picamera2" in str(e.value)


def test_open_source_picks_picamera2(fake_picamera2: FakeModule) -> None:
    for uri in ("picamera2", "auto"):
        src = open_source(SourceConfig(uri=uri), picamera2_module=fake_picamera2)
        assert isinstance(src, Picamera2Source)
        src.close()


def test_picamera2_import_is_lazy(tmp_path: Path) -> None:
    # A stand-in `picamera2` on the path: importing moodcam.sources must not import it; opening
    # a picamera2 source must (and its error becomes a SourceError).
    (tmp_path / "picamera2.py").write_text(
        textwrap.dedent("""
        class Picamera2:
            def __init__(self):
                raise RuntimeError("no camera in this test")
    """)
    )
    code = textwrap.dedent("""
        import sys
        import moodcam.sources as s
        assert "picamera2" not in sys.modules, "imported at module import"
        try:
            s.open_source(s.SourceConfig(uri="picamera2"))
        except s.SourceError as e:
            assert e.kind == "camera" and "no camera in this test" in str(e), e
        assert "picamera2" in sys.modules
        print("ok")
    """)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
