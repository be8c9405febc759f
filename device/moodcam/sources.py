"""Frame sources: where frames come from, behind one small interface.

`open_source(cfg)` picks by `cfg.uri`:

- "picamera2": the Pi camera through picamera2 (imported lazily, only when this source opens).
- "auto": picamera2 if it imports and opens a camera, otherwise OpenCV camera 0.
- "0", "1", ... or a device path ("/dev/videoN", "/dev/v4l/by-id/..."): a camera through OpenCV
  VideoCapture (live).
- http://, https://, rtsp://, rtsps:// URL: a network stream through VideoCapture (live).
- a directory: its images sorted by file name (media time t = position / cfg.fps).
- anything else: a video file through VideoCapture (media time from the container); a
  ``file:///path`` URL names a file or folder too.

With `cfg.loop` a file or folder is played again from the start each time it ends
(`LoopingSource`), media time and index counting on across passes. With `cfg.clock` = "wall" its
frames carry wall-clock times instead (`WallClockSource`).

Live sources stamp frames with UTC epoch seconds (`time.time()`); file and folder sources with
media time, and run as fast as they can unless `cfg.realtime` (then paced to media time), so a run
over a file is reproducible.

Errors are `SourceError` with `kind`:
- "missing": the file / folder does not exist, or the folder holds no images;
- "unreadable": it exists but is not a readable video;
- "camera": a camera or stream cannot be opened, or was lost and did not come back.

Reconnection (live sources): when a read fails the source releases the device and reopens it,
sleeping 0.5, 1, 2, 4 ... s between attempts (doubling, capped at `cfg.reconnect_max_s`), for at
most `RECONNECT_ATTEMPTS` attempts (8: about 90 s with the default 30 s cap); the first attempt
that delivers a frame resumes the stream, otherwise `read()` raises SourceError(kind="camera").
A network stream silent for STREAM_TIMEOUT_MS fails its open or read (open_capture), so a
stalled IP camera enters this path instead of blocking in FFmpeg for 30 s.
The sleep function and the attempt count are constructor parameters, so this is testable.

Health: a live source calls `on_health(state, detail)` (an attribute the daemon sets; None = no
one listens) with "degraded" when a read fails and reconnecting begins, "ok" when a reconnect
delivers a frame again, and "lost" just before it raises SourceError(kind="camera"). Reconnect
waits go through the `sleep` function, so a watchdog-feeding sleep keeps systemd content while
the source is degraded; a read that blocks forever calls no sleep, and the watchdog trips.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import math
import os
import stat
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any
from urllib.parse import urlsplit

import cv2
import numpy as np

from moodcam.config import DetectorConfig, SourceConfig
from moodcam.errors import EXIT_SOURCE, MoodcamError
from moodcam.files import (
    MAX_IMAGE_BYTES,
    FileRefused,
    check_regular,
    opencv_path,
    read_regular,
    shown,
)
from moodcam.records import Frame
from moodcam.urls import file_url_path, is_file_url, redact_url

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pnm"}
)
STREAM_SCHEMES = ("http", "https", "rtsp", "rtsps")
# FFmpeg waits 30 s for a silent network stream, per open and per read: as long as the watchdog
# (WatchdogSec=30) and three times what systemd gives a stop (TimeoutStopSec=10), after which it
# kills the daemon with its unsent MQTT messages. A stream that says nothing for this long fails
# instead, into the reconnect backoff, whose waits feed the watchdog and hear a stop.
STREAM_TIMEOUT_MS = 5000
RECONNECT_ATTEMPTS = 8
# OpenCV takes a camera index as a C int (with its API offsets: 200 = V4L2 camera 0, ...).
MAX_CAMERA_INDEX = 2**31 - 1
RECONNECT_FIRST_S = 0.5
# A file source gives up after this many consecutive undecodable frames (a broken tail).
MAX_CONSECUTIVE_BAD_FRAMES = 50
# picamera2's lores stream width by default: the detector's default detect_width, so the Y plane
# is the detection image as is (the daemon passes the configured one).
DEFAULT_LORES_WIDTH = DetectorConfig().detect_width

Sleep = Callable[[float], None]
Clock = Callable[[], float]
HealthCallback = Callable[[str, str], None]  # (state: "ok" | "degraded" | "lost", detail)


class SourceError(MoodcamError):
    """A source cannot deliver frames. `kind` is "missing", "unreadable" or "camera".
    The CLI prints it as one line and exits with EXIT_SOURCE (6)."""

    exit_code = EXIT_SOURCE

    KINDS = ("missing", "unreadable", "camera")

    def __init__(self, message: str, kind: str) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"SourceError kind must be one of {self.KINDS}, got {kind!r}")
        super().__init__(message)
        self.kind = kind


class Source(ABC):
    """A stream of Frames. `read()` returns None at the end of a file; live sources never end
    (they reconnect, or raise SourceError). Usable as a context manager and as an iterator."""

    live: bool = False
    description: str = ""
    skipped: int = 0  # frames / images that could not be decoded and were skipped
    on_health: HealthCallback | None = None  # set by the daemon; see the module docstring

    def _report(self, state: str, detail: str) -> None:
        if self.on_health is not None:
            try:
                self.on_health(state, detail)
            except Exception as e:  # a listener's bug must not take the camera down
                log.error("health listener failed: %s", e)

    @abstractmethod
    def read(self) -> Frame | None: ...

    @abstractmethod
    def close(self) -> None: ...

    def __iter__(self) -> Iterator[Frame]:
        while (frame := self.read()) is not None:
            yield frame

    def __enter__(self) -> Source:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description}>"


# --------------------------------------------------------------------------- helpers


def backoff_delays(
    max_s: float, attempts: int = RECONNECT_ATTEMPTS, first_s: float = RECONNECT_FIRST_S
) -> list[float]:
    """The waits before each reconnect attempt: doubling from first_s, capped at max_s."""
    return [min(first_s * 2**k, max_s) for k in range(attempts)]


def _reconnect(
    description: str,
    attempt: Callable[[], Any],
    max_s: float,
    attempts: int,
    sleep: Sleep,
    report: HealthCallback | None = None,
) -> Any:
    """Call `attempt` after each backoff delay until it returns non-None; else SourceError.
    `report(state, detail)` hears "degraded" first, then "ok" or "lost" (see the docstring)."""
    delays = backoff_delays(max_s, attempts)
    if report is not None:
        report("degraded", f"{description}: no frame; reconnecting")
    for k, delay in enumerate(delays, 1):
        log.warning(
            "%s: no frame; reconnecting in %.1f s (attempt %d of %d)",
            description,
            delay,
            k,
            attempts,
        )
        sleep(delay)
        try:
            result = attempt()
        except Exception as e:  # a driver may raise anything while the device is away
            log.warning("%s: reconnect attempt %d failed: %s", description, k, e)
            result = None
        if result is not None:
            log.warning("%s: reconnected", description)
            if report is not None:
                report("ok", f"{description}: reconnected after {k} attempt(s)")
            return result
    error = SourceError(
        f"{description}: lost; no frame after {attempts} reconnect attempts "
        f"over {sum(delays):.0f} s",
        "camera",
    )
    if report is not None:
        report("lost", str(error))
    raise error


class _Pacer:
    """Sleeps so media time advances at the speed of the wall clock (cfg.realtime)."""

    def __init__(self, enabled: bool, clock: Clock, sleep: Sleep) -> None:
        self.enabled, self.clock, self.sleep = enabled, clock, sleep
        self._start: tuple[float, float] | None = None  # (wall, media) at the first frame

    def wait_for(self, t: float) -> None:
        if not self.enabled:
            return
        now = self.clock()
        if self._start is None:
            self._start = (now, t)
            return
        due = self._start[0] + (t - self._start[1])
        if due > now:
            self.sleep(due - now)


def _valid_image(img: Any) -> bool:
    return (
        isinstance(img, np.ndarray)
        and img.dtype == np.uint8
        and img.size > 0
        and (img.ndim == 2 or (img.ndim == 3 and img.shape[2] in (1, 3, 4)))
    )


# --------------------------------------------------------------------------- OpenCV live


def is_stream(uri: str) -> bool:
    """A network stream's URL (STREAM_SCHEMES), as opposed to a camera, file or folder."""
    return urlsplit(uri).scheme.lower() in STREAM_SCHEMES


def open_capture(target: int | str) -> Any:
    """cv2.VideoCapture of a camera or stream; a network stream's open and reads give up after
    STREAM_TIMEOUT_MS of silence."""
    if isinstance(target, str) and is_stream(target):
        timeouts = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            STREAM_TIMEOUT_MS,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            STREAM_TIMEOUT_MS,
        ]
        return cv2.VideoCapture(target, cv2.CAP_FFMPEG, timeouts)
    return cv2.VideoCapture(target)


class CaptureSource(Source):
    """A camera (index or device path) or network stream through OpenCV VideoCapture; live."""

    live = True

    def __init__(
        self,
        target: int | str,
        cfg: SourceConfig,
        *,
        description: str | None = None,
        capture_factory: Callable[..., Any] = open_capture,
        clock: Clock = time.time,
        sleep: Sleep = time.sleep,
        reconnect_attempts: int = RECONNECT_ATTEMPTS,
    ) -> None:
        self.cfg = cfg
        self.target = target
        self.description = description or (
            f"camera {target}" if isinstance(target, int) else redact_url(str(target))
        )
        self._factory = capture_factory
        self._clock, self._sleep = clock, sleep
        self._attempts = reconnect_attempts
        self._index = 0
        self._closed = False
        self.skipped = 0
        self._is_camera = isinstance(target, int) or str(target).startswith("/dev/")
        if isinstance(target, str):
            try:
                opencv_path(target)
            except FileRefused as e:
                raise SourceError(f"{shown(self.description)}: {e}", "camera") from None
        self._cap = self._open()
        if self._cap is None:
            what = (
                "cannot open stream"
                if not self._is_camera
                else ("cannot open camera (no such camera, or it is busy)")
            )
            raise SourceError(f"{self.description}: {what}", "camera")

    def _open(self) -> Any:
        cap = self._factory(self.target)
        if not cap.isOpened():
            cap.release()
            return None
        if self._is_camera:
            # Requests only: a camera may choose the nearest mode it supports.
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.cfg.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.cfg.height)
            cap.set(cv2.CAP_PROP_FPS, self.cfg.fps)
            # Keep the driver queue short, so we process the newest frame, not a stale one.
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        return cap

    def _grab(self) -> np.ndarray | None:
        """The next good image; None when the capture fails (not ok: the device or stream is
        gone or stalled) or delivers only corrupt images, so the caller reconnects. A corrupt
        image (ok, but empty or of the wrong shape: a torn MJPEG frame) is skipped and counted
        in `skipped`; reopening the camera for one bad frame would lose seconds of video."""
        bad = 0
        while self._cap is not None and bad < MAX_CONSECUTIVE_BAD_FRAMES:
            ok, img = self._cap.read()
            if not ok:
                return None
            if _valid_image(img):
                return img
            bad += 1
            self.skipped += 1
            if self.skipped == 1 or self.skipped % 100 == 0:  # a bad cable must not flood the log
                log.warning("%s: corrupt frame skipped (%d so far)", self.description, self.skipped)
        return None

    def _reopen_and_grab(self) -> np.ndarray | None:
        if self._cap is not None:
            self._cap.release()
        self._cap = self._open()
        return self._grab()

    def read(self) -> Frame | None:
        if self._closed:
            return None
        img = self._grab()
        if img is None:
            img = _reconnect(
                self.description,
                self._reopen_and_grab,
                self.cfg.reconnect_max_s,
                self._attempts,
                self._sleep,
                self._report,
            )
        frame = Frame(image=img, t=self._clock(), index=self._index)
        self._index += 1
        return frame

    def close(self) -> None:
        self._closed = True
        if self._cap is not None:
            self._cap.release()
            self._cap = None


# --------------------------------------------------------------------------- files


class VideoFileSource(Source):
    """A video file through OpenCV VideoCapture. `t` is media time: the container's timestamp of
    each frame (CAP_PROP_POS_MSEC), or index / fps when the backend gives none. `Frame.index` is
    the frame's position in the file, so skipped frames leave gaps."""

    live = False

    def __init__(
        self,
        path: str | os.PathLike,
        cfg: SourceConfig,
        *,
        capture_factory: Callable[..., Any] = cv2.VideoCapture,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.path = Path(path)
        self.cfg = cfg
        self.description = f"video file {self.path}"
        self.skipped = 0
        if not self.path.exists():
            raise SourceError(f"{self.path}: no such file", "missing")
        if not os.access(self.path, os.R_OK):
            raise SourceError(f"{self.path}: cannot read (permission denied)", "unreadable")
        try:
            # A video file is a regular file: FFmpeg's open of a FIFO blocks until a writer
            # comes, before the daemon listens for SIGTERM (cameras are /dev nodes, see above).
            check_regular(self.path)
            target = opencv_path(self.path)
        except FileRefused as e:
            raise SourceError(f"{shown(self.path)}: {e}", "unreadable") from None
        self._cap = capture_factory(target)
        if not self._cap.isOpened():
            self._cap.release()
            raise SourceError(f"{self.path}: cannot decode as video", "unreadable")
        # FFmpeg's "tty" demuxer renders text files (.txt, .nfo, ...) as video with the ANSI-art
        # codec: "decodable", but never a camera recording.
        fourcc = int(self._cap.get(cv2.CAP_PROP_FOURCC) or 0) & 0xFFFFFFFF
        if fourcc.to_bytes(4, "little") == b"ansi":
            self._cap.release()
            raise SourceError(f"{self.path}: cannot decode as video (a text file)", "unreadable")
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if math.isfinite(fps) and 0 < fps < 1000 else cfg.fps
        count = self._cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.frame_count = int(count) if math.isfinite(count) and count > 0 else None
        self._pacer = _Pacer(cfg.realtime, clock, sleep)
        self._index = 0
        self._last_t = -math.inf
        self._use_pos_msec = True
        self._closed = False
        # Decode the first frame now: a file OpenCV "opens" but cannot decode fails at start,
        # not on the first read deep in the pipeline.
        self._pending = self._next()
        if self._pending is None:
            self.close()
            raise SourceError(
                f"{self.path}: cannot decode as video (no frame decoded)", "unreadable"
            )
        self.description = f"video file {self.path} ({self.fps:g} fps)"

    def _media_time(self, index: int) -> float:
        if self._use_pos_msec:
            ms = self._cap.get(cv2.CAP_PROP_POS_MSEC)
            if math.isfinite(ms) and ms >= 0 and (index == 0 or ms / 1000.0 > self._last_t):
                return ms / 1000.0
            if index > 0:  # a backend without timestamps (stuck at 0): count frames instead
                self._use_pos_msec = False
        t = index / self.fps
        return t if t > self._last_t else self._last_t + 1.0 / self.fps

    def _next(self) -> Frame | None:
        bad = 0
        while bad < MAX_CONSECUTIVE_BAD_FRAMES:
            pos_before = self._cap.get(cv2.CAP_PROP_POS_FRAMES)
            ok, img = self._cap.read()
            index = self._index
            if ok and _valid_image(img):
                self._index += 1
                t = self._media_time(index)
                self._last_t = t
                return Frame(image=img, t=t, index=index)
            # A failed read that did not move the position is the end of the file; one that did
            # (or a "successful" read with no usable image) is a corrupt frame: skip and count it.
            pos_after = self._cap.get(cv2.CAP_PROP_POS_FRAMES)
            at_end = not ok and (
                pos_after <= pos_before
                or (self.frame_count is not None and pos_after >= self.frame_count)
            )
            if at_end:
                return None
            bad += 1
            self.skipped += 1
            self._index += 1
            log.warning("%s: frame %d could not be decoded; skipped", self.path, index)
        log.warning(
            "%s: %d undecodable frames in a row; treating as the end",
            self.path,
            MAX_CONSECUTIVE_BAD_FRAMES,
        )
        return None

    def read(self) -> Frame | None:
        if self._closed:
            return None
        frame, self._pending = self._pending, None
        if frame is None:
            frame = self._next()
        if frame is not None:
            self._pacer.wait_for(frame.t)
        return frame

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._cap.release()


class FolderSource(Source):
    """The images in a directory, sorted by file name; t = position / cfg.fps (media time).

    Only files with an image extension count (others, and hidden files, are ignored); an image
    that cannot be decoded is skipped with one warning and counted in `skipped`, and leaves a gap
    in index and time. Colour images are BGR; grey ones are delivered as BGR too (cv2.imread).
    Each frame is a `still`: the images may be unrelated pictures, so the pipeline detects faces
    in each afresh (the mood is still smoothed over the folder's media time)."""

    live = False

    def __init__(
        self,
        path: str | os.PathLike,
        cfg: SourceConfig,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.path = Path(path)
        self.cfg = cfg
        self.skipped = 0
        if not self.path.is_dir():
            raise SourceError(f"{self.path}: no such folder", "missing")
        try:
            entries = list(self.path.iterdir())
        except OSError as e:
            raise SourceError(
                f"{self.path}: cannot list folder: {e.strerror}", "unreadable"
            ) from None
        self.files = sorted(
            (
                p
                for p in entries
                if p.suffix.lower() in IMAGE_EXTENSIONS
                and not p.name.startswith(".")
                and p.is_file()
            ),
            key=lambda p: p.name,
        )
        if not self.files:
            exts = ", ".join(sorted(IMAGE_EXTENSIONS))
            raise SourceError(f"{self.path}: no images in folder ({exts})", "missing")
        self.description = f"image folder {self.path} ({len(self.files)} images @ {cfg.fps:g} fps)"
        self._pacer = _Pacer(cfg.realtime, clock, sleep)
        self._pos = 0
        self._closed = False

    def read(self) -> Frame | None:
        while not self._closed and self._pos < len(self.files):
            index = self._pos
            self._pos += 1
            p = self.files[index]
            why = "cannot read as an image"
            try:
                # Decoded from bytes, not cv2.imread(name): a name that is not UTF-8 (copied from
                # a camera's FAT card) crashes imread, and bytes let any name through.
                img = cv2.imdecode(
                    np.frombuffer(read_regular(p, MAX_IMAGE_BYTES, "an image"), np.uint8),
                    cv2.IMREAD_COLOR,
                )
            except (OSError, FileRefused) as e:  # replaced since listed, or a giant file
                img, why = None, f"cannot read ({e.strerror if isinstance(e, OSError) else e})"
            except cv2.error:  # over OpenCV's pixel limit, or a header it chokes on
                img = None
            if not _valid_image(img):
                self.skipped += 1
                log.warning("%s: %s; skipped", shown(p), why)
                continue
            t = index / self.cfg.fps
            self._pacer.wait_for(t)
            return Frame(image=img, t=t, index=index, still=True)
        if not self._closed and self.skipped == len(self.files):
            # Ending normally would pass for a run over faces-free pictures, with exit status 0.
            raise SourceError(
                f"{self.path}: none of its {len(self.files)} images can be read", "unreadable"
            )
        return None

    def close(self) -> None:
        self._closed = True


class LoopingSource(Source):
    """A file or folder source played again from the start each time it ends ([source] loop).

    Media time and frame index keep counting up across passes (each pass starts one frame
    interval after the last frame of the one before), so the tracker, the log and MQTT see one
    continuous run. A pass that delivers no frame at all ends the loop instead of spinning."""

    live = False

    def __init__(self, open_once: Callable[[], Source]) -> None:
        self._open = open_once
        self._inner: Source | None = open_once()
        self.description = f"{self._inner.description}, looped"
        self.passes = 1
        self._skipped_before = 0
        self._t_offset = 0.0
        self._index_offset = 0
        self._last: Frame | None = None  # last frame delivered, in looped time
        self._pass_frames = 0

    @property
    def skipped(self) -> int:  # type: ignore[override]
        return self._skipped_before + (self._inner.skipped if self._inner else 0)

    def read(self) -> Frame | None:
        while self._inner is not None:
            frame = self._inner.read()
            if frame is not None:
                self._pass_frames += 1
                frame = dataclasses.replace(
                    frame, t=frame.t + self._t_offset, index=frame.index + self._index_offset
                )
                self._last = frame
                return frame
            if self._pass_frames == 0 or self._last is None:
                return None
            # VideoFileSource knows the container's rate; FolderSource plays at cfg.fps.
            fps = getattr(self._inner, "fps", None) or self._inner.cfg.fps
            step = 1.0 / fps
            self._skipped_before += self._inner.skipped
            self._inner.close()
            self._inner = None
            self._t_offset, self._index_offset = self._last.t + step, self._last.index + 1
            self._pass_frames = 0
            self._inner = self._open()
            self.passes += 1
        return None

    def close(self) -> None:
        if self._inner is not None:
            self._skipped_before += self._inner.skipped
            self._inner.close()
            self._inner = None


class WallClockSource(Source):
    """A file or folder source whose frames carry wall-clock times ([source] clock = "wall"):
    the wall clock at the first frame plus the media time since it (with `realtime`, the time
    each frame was shown). `moodcam report` needs such times; media time is seconds into a
    file, which it refuses to place on a calendar."""

    live = False

    def __init__(self, inner: Source, clock: Clock = time.time) -> None:
        self._inner, self._clock = inner, clock
        self.description = f"{inner.description}, wall-clock times"
        self._offset: float | None = None

    @property
    def skipped(self) -> int:  # type: ignore[override]
        return self._inner.skipped

    def read(self) -> Frame | None:
        frame = self._inner.read()
        if frame is None:
            return None
        if self._offset is None:
            self._offset = self._clock() - frame.t
        return dataclasses.replace(frame, t=frame.t + self._offset)

    def close(self) -> None:
        self._inner.close()


# --------------------------------------------------------------------------- picamera2


def lores_size(main: tuple[int, int], lores_width: int = DEFAULT_LORES_WIDTH) -> tuple[int, int]:
    """The lores stream size: `lores_width` (at most the main width) with the main aspect ratio,
    both even (YUV420 subsamples chroma 2x2)."""
    w, h = main
    lw = max(2, min(lores_width, w) // 2 * 2)
    lh = max(2, round(h * lw / w) // 2 * 2)
    return lw, lh


class Picamera2Source(Source):
    """The Pi camera through picamera2 (libcamera), following its documented API.

    Two streams from one configuration: "main" in RGB888 -- which picamera2 documents as [B, G, R]
    byte order, i.e. what OpenCV calls BGR -- becomes Frame.image; "lores" in YUV420, whose array
    is (lh*3/2, stride): its first lh rows (cut to lw columns, dropping stride padding) are the
    Y plane, a gray image the ISP makes for free, which becomes Frame.gray at LORES size. Frame.gray
    is therefore smaller than Frame.image; pass the image size to the detector
    (`FaceDetector.detect_frame` does) so boxes come back in main-stream pixels.

    Both arrays come from the same request via `capture_arrays(["main", "lores"])` when the
    installed picamera2 has it (so image and gray are the same instant), else from two
    `capture_array` calls. picamera2 is imported here, not at module import, so this module
    imports on machines without it; `picamera2_module` substitutes a module (tests).
    """

    live = True

    def __init__(
        self,
        cfg: SourceConfig,
        *,
        lores_width: int = DEFAULT_LORES_WIDTH,
        picamera2_module: ModuleType | Any | None = None,
        clock: Clock = time.time,
        sleep: Sleep = time.sleep,
        reconnect_attempts: int = RECONNECT_ATTEMPTS,
    ) -> None:
        self.cfg = cfg
        if picamera2_module is None:
            try:
                picamera2_module = importlib.import_module("picamera2")
            except Exception as e:  # ImportError, or libcamera bindings failing to load
                raise SourceError(
                    f"picamera2: cannot import ({e}); install python3-picamera2 "
                    "with apt, or set [source] uri to a camera index",
                    "camera",
                ) from e
        self._module = picamera2_module
        self.main_size = (cfg.width, cfg.height)
        self.lores_size = lores_size(self.main_size, lores_width)
        self._clock, self._sleep = clock, sleep
        self._attempts = reconnect_attempts
        self._index = 0
        self._closed = False
        self.description = (
            f"picamera2 {cfg.width}x{cfg.height} @ {cfg.fps:g} fps "
            f"(gray: lores {self.lores_size[0]}x{self.lores_size[1]} Y plane)"
        )
        self.camera_config: Any = None
        self._cam: Any = None
        try:
            self._cam = self._start_camera()
        except SourceError:
            raise
        except Exception as e:  # no camera attached (IndexError), busy (RuntimeError), ...
            raise SourceError(f"picamera2: cannot open camera: {e}", "camera") from e

    def _start_camera(self) -> Any:
        cam = self._module.Picamera2()
        try:
            config = cam.create_video_configuration(
                main={"size": self.main_size, "format": "RGB888"},
                lores={"size": self.lores_size, "format": "YUV420"},
                controls={"FrameRate": float(self.cfg.fps)},
            )
            cam.configure(config)
            cam.start()
        except Exception:
            cam.close()
            raise
        self.camera_config = config
        return cam

    def _capture(self) -> tuple[np.ndarray, np.ndarray] | None:
        if self._cam is None:
            return None
        if hasattr(self._cam, "capture_arrays"):
            (main, lores), _metadata = self._cam.capture_arrays(["main", "lores"])
        else:
            main = self._cam.capture_array("main")
            lores = self._cam.capture_array("lores")
        if not _valid_image(main) or not isinstance(lores, np.ndarray) or lores.ndim != 2:
            return None
        if main.ndim == 3 and main.shape[2] == 4:  # an XRGB8888 main stream: drop the padding byte
            main = main[:, :, :3]
        lw, lh = self.lores_size
        # Trust the array over the request: libcamera may adjust the size it was asked for.
        lh = min(lh, lores.shape[0] * 2 // 3)
        gray = np.ascontiguousarray(lores[:lh, :lw])
        return main, gray

    def _grab(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The next good (image, gray); None when a capture raises (the camera is gone or timed
        out) or only corrupt arrays come, so the caller restarts the camera. A corrupt array is
        skipped and counted in `skipped`, as CaptureSource does: restarting libcamera for one bad
        buffer would lose a second or more of video."""
        bad = 0
        while self._cam is not None and bad < MAX_CONSECUTIVE_BAD_FRAMES:
            try:
                got = self._capture()
            except Exception as e:
                log.warning("%s: capture failed: %s", self.description, e)
                return None
            if got is not None:
                return got
            bad += 1
            self.skipped += 1
            if self.skipped == 1 or self.skipped % 100 == 0:
                log.warning("%s: corrupt frame skipped (%d so far)", self.description, self.skipped)
        return None

    def _restart_and_capture(self) -> tuple[np.ndarray, np.ndarray] | None:
        self._release()
        self._cam = self._start_camera()
        return self._grab()

    def read(self) -> Frame | None:
        if self._closed:
            return None
        got = self._grab()
        if got is None:
            got = _reconnect(
                self.description,
                self._restart_and_capture,
                self.cfg.reconnect_max_s,
                self._attempts,
                self._sleep,
                self._report,
            )
        main, gray = got
        frame = Frame(image=main, t=self._clock(), index=self._index, gray=gray)
        self._index += 1
        return frame

    def _release(self) -> None:
        cam, self._cam = self._cam, None
        if cam is None:
            return
        # A camera that failed may also fail to stop; still close it, and never raise from here.
        for step in (cam.stop, cam.close):
            try:
                step()
            except Exception as e:
                log.warning("%s: %s failed: %s", self.description, step.__name__, e)

    def close(self) -> None:
        self._closed = True
        self._release()


# --------------------------------------------------------------------------- factory


def open_source(
    cfg: SourceConfig,
    *,
    lores_width: int = DEFAULT_LORES_WIDTH,
    picamera2_module: ModuleType | Any | None = None,
    sleep: Sleep = time.sleep,
    clock: Clock = time.monotonic,
) -> Source:
    """Open the source `cfg.uri` names (see the module docstring); raise SourceError if it can't.

    `sleep` is used for reconnect backoff and real-time pacing: pass a function that keeps a
    watchdog fed during long waits (moodcam.notify.Notifier.sleep). `clock` (monotonic seconds)
    paces a file source in real time; tests pass a fake one."""
    uri = cfg.uri.strip()
    if uri == "picamera2":
        return Picamera2Source(
            cfg, lores_width=lores_width, picamera2_module=picamera2_module, sleep=sleep
        )
    if uri == "auto":
        try:
            return Picamera2Source(
                cfg, lores_width=lores_width, picamera2_module=picamera2_module, sleep=sleep
            )
        except SourceError as e:
            # No picamera2 (a PC), or it has no camera (a Pi with a USB webcam): try OpenCV's 0.
            log.info("auto: %s; trying OpenCV camera 0", e)
            try:
                return CaptureSource(0, cfg, sleep=sleep)
            except SourceError as e2:
                raise SourceError(f"auto: no camera found ({e}; {e2})", "camera") from None
    if uri.isascii() and uri.isdigit():
        if int(uri) > MAX_CAMERA_INDEX:  # OpenCV's overload resolution raised on it
            raise SourceError(
                f"camera {uri}: no such camera (an index is 0 to {MAX_CAMERA_INDEX})", "camera"
            )
        return CaptureSource(int(uri), cfg, sleep=sleep)
    if is_file_url(uri):
        try:
            uri = file_url_path(uri)
        except ValueError as e:
            raise SourceError(str(e), "missing") from None
    if uri.startswith("/dev/"):
        # /dev/videoN, or a stable /dev/v4l/by-id/... link to one: a device node is a camera
        # (live: wall-clock times, reconnects); a plain file under /dev/shm is still a video.
        try:
            node = stat.S_ISCHR(os.stat(uri).st_mode)
        except FileNotFoundError:
            raise SourceError(f"{uri}: no such camera", "camera") from None
        except OSError as e:
            raise SourceError(f"{uri}: cannot open the camera ({e.strerror})", "camera") from None
        if node:
            return CaptureSource(uri, cfg, sleep=sleep)
    if is_stream(uri):
        if not cfg.password_file:
            return CaptureSource(uri, cfg, sleep=sleep)
        from moodcam.credentials import read_password_file
        from moodcam.urls import with_password

        if not urlsplit(uri).username:
            raise SourceError(
                f"{uri}: [source] password_file needs a user in the URL (rtsp://user@host/...)",
                "camera",
            )
        try:
            password = read_password_file(cfg.password_file, "[source]")
        except ValueError as e:
            raise SourceError(str(e), "camera") from None
        return CaptureSource(with_password(uri, password), cfg, sleep=sleep)
    if not uri:
        raise SourceError("[source] uri is empty", "missing")
    path = Path(uri).expanduser()

    def open_once() -> Source:
        try:
            is_dir = path.is_dir()
        except OSError as e:  # a name too long: Path.is_dir raises what it does not expect
            raise SourceError(f"{shown(path)}: {e.strerror or e}", "missing") from None
        if is_dir:
            return FolderSource(path, cfg, clock=clock, sleep=sleep)
        return VideoFileSource(path, cfg, clock=clock, sleep=sleep)

    source = LoopingSource(open_once) if cfg.loop else open_once()
    return WallClockSource(source) if cfg.clock == "wall" and not source.live else source
