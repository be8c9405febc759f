"""The daemon: source -> detector -> classifier -> tracker -> sinks, one frame at a time.

`Pipeline` is the frame step as a plain object (build it in a test and call `process`);
`Daemon` owns the loop around it: start-up checks, systemd readiness and watchdog, signals,
and a clean shutdown that flushes every sink.

Camera health: the daemon keeps ``health = {"camera": "ok" | "degraded" | "lost", "since": <UTC
epoch s of the change>, "detail": "<one line>"}``. It becomes "ok" with the first frame,
"degraded" when a live source starts reconnecting, "ok" again when frames return, "lost" when the
source gives up or cannot be opened at start (SourceError: exit 6). Each change is logged once, shown in systemd's STATUS line,
and handed to every sink's ``set_health(dict)`` (ignored by all but MqttSink: retained on
``moodcam/<id>/health``, which `moodcam doctor` reads back; and HealthFile: `<log>.health.json`,
which `moodcam web` reads).
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from moodcam.classifier import Classifier
from moodcam.config import Config
from moodcam.errors import EXIT_BROKER, EXIT_OK, EXIT_SINK, SinkError
from moodcam.files import FileRefused, open_private, private_folder
from moodcam.notify import Notifier
from moodcam.preprocess import crop_face, prepare_face
from moodcam.records import Frame, MoodUpdate
from moodcam.sinks import Sink, build_sinks, close_sinks, sink_error, sink_stats

if TYPE_CHECKING:
    from moodcam.sources import SourceError

log = logging.getLogger("moodcam")

STAGES = ("decode", "detect", "crop", "invoke", "track", "sinks")  # decode: timed by the caller


class StopRequested(BaseException):
    """Raised out of a source's wait when the daemon is asked to stop (SIGTERM, Ctrl-C).
    A BaseException, like KeyboardInterrupt: a source's `except Exception` around a reconnect
    attempt must not take a stop for a failed attempt."""


@dataclass
class StageTimes:
    """Per-stage seconds of every processed frame, kept only when profiling (bench)."""

    seconds: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})

    def add(self, stage: str, dt: float) -> None:
        self.seconds[stage].append(dt)


class Pipeline:
    """One frame in, one MoodUpdate out, delivered to every sink."""

    def __init__(
        self,
        detector: Any,
        classifier: Classifier,
        tracker: Any,
        sinks: list[Sink],
        save_faces_dir: str = "",
        profile: bool = False,
    ) -> None:
        self.detector, self.classifier, self.tracker, self.sinks = (
            detector,
            classifier,
            tracker,
            sinks,
        )
        self.margin = classifier.margin
        self.save_faces_dir = Path(save_faces_dir) if save_faces_dir else None
        self.times = StageTimes() if profile else None
        self._save_failed = False
        self.frames = 0
        self.faces = 0

    def process(self, frame: Frame) -> MoodUpdate:
        clock = time.perf_counter
        t0 = clock()
        if frame.still:
            # An unrelated picture: tracking would search where the last one had its faces and
            # lose this one's; a full detection finds them (the mood tracker still smooths).
            self.detector.reset()
        boxes = self.detector.detect_frame(
            frame
        )  # uses the camera's free gray image when it has one
        t1 = clock()
        crops = [self.classifier.quantize(self._crop(frame.image, box)) for box in boxes]
        t2 = clock()
        scores = [self.classifier.probabilities(c) for c in crops]
        t3 = clock()
        update = self.tracker.update(frame.t, list(zip(boxes, scores, strict=True)))
        t4 = clock()
        for sink in self.sinks:
            sink.handle(update)
        t5 = clock()
        if self.times is not None:
            for stage, dt in zip(
                STAGES[1:], (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True
            ):
                self.times.add(stage, dt)
        self.frames += 1
        self.faces += len(boxes)
        return update

    def _crop(self, image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        # Crop first, then grey and resize: the same pixels as greying the whole frame, for less work.
        face = prepare_face(crop_face(image, box, self.margin), self.classifier.face_size)
        if self.save_faces_dir is not None:  # debug only: crops never touch disk otherwise
            import cv2

            path = self.save_faces_dir / f"{self.frames:08d}_{box[0]}_{box[1]}.png"
            try:  # the folder again: a Pipeline built alone, or the folder removed mid-run
                private_folder(self.save_faces_dir)
                ok, png = cv2.imencode(".png", face)
                with open_private(path) as f:  # a face: 0640 whatever the umask
                    f.write(png.tobytes())
                saved = bool(ok)
            except (OSError, cv2.error, FileRefused):
                saved = False
            if not saved and not self._save_failed:  # a full disk must not stop the sensor
                log.warning(
                    "[debug] save_faces_dir: cannot write %s; later failures not logged", path
                )
                self._save_failed = True
        return face


def prepare_faces_dir(cfg: Config) -> None:
    """Create `[debug] save_faces_dir` and check it can be written, before the run: a path that
    can never hold the crops is a SinkError (exit 8) naming it, not a crash at the first face."""
    folder = cfg.debug.save_faces_dir
    if not folder:
        return
    try:
        private_folder(folder)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise SinkError(f"{cfg.path}: [debug] save_faces_dir {folder}: {e.strerror or e}") from None
    log.warning(
        "[debug] save_faces_dir %s: every face crop is written there (personal data: "
        "folder 0750, files 0640); leave it empty to keep frames in memory",
        folder,
    )


def health_record(state: str, detail: str) -> dict[str, Any]:
    """The camera health as the daemon keeps and publishes it (see the module docstring)."""
    return {"camera": state, "since": round(time.time(), 3), "detail": detail}


@dataclass
class RunSummary:
    frames: int = 0
    faces: int = 0
    changes: int = 0
    moods: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    last_mood: str | None = None
    skipped: int = 0  # undecodable frames the source skipped
    sinks: dict[str, dict] = field(default_factory=dict)  # each sink's counters at close

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"seconds": round(self.seconds, 3)}


class Daemon:
    """The frame loop with start-up, readiness, watchdog, signals and shutdown."""

    def __init__(
        self, cfg: Config, notifier: Any = None, stop: threading.Event | None = None
    ) -> None:
        self.cfg = cfg
        # Outside systemd a Notifier without a socket: its messages are no-ops, its sleep sleeps.
        self.notifier = notifier if notifier is not None else Notifier()
        self.stop = stop or threading.Event()
        self.summary = RunSummary()
        self.health: dict[str, Any] = {"camera": "starting", "since": time.time(), "detail": ""}
        self._sinks: list[Sink] = []

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda signum, _frame: self.stop.set())

    def run(self) -> int:
        from moodcam.detector import FaceDetector
        from moodcam.sources import SourceError, open_source
        from moodcam.tracker import MoodTracker

        cfg = self.cfg
        clf = Classifier(
            cfg.classifier.model,
            cfg.classifier.card or None,
            cfg.classifier.threads,
            cfg.classifier.runtime,
        )
        log.info(
            "model %s (%d labels: %s) on %s, %d thread(s)",
            clf.model_path,
            len(clf.labels),
            ",".join(clf.labels),
            clf.runtime,
            cfg.classifier.threads,
        )
        detector = FaceDetector(cfg.detector)
        prepare_faces_dir(cfg)
        try:
            source = open_source(cfg.source, sleep=self.wait, lores_width=cfg.detector.detect_width)
        except SourceError as e:
            self._report_lost_at_start(e)
            raise
        log.info("source %s", source.description or cfg.source.uri)
        try:
            sinks = build_sinks(cfg, clf.labels)
        except BaseException:
            source.close()
            raise
        self._sinks = sinks
        source.on_health = self.set_health  # reconnects report degraded / ok / lost
        pipeline = Pipeline(
            detector, clf, MoodTracker(cfg.tracker, clf.labels), sinks, cfg.debug.save_faces_dir
        )
        self._install_signals()
        started = time.monotonic()
        ready = False
        try:
            while not self.stop.is_set():
                try:
                    frame = source.read()
                except StopRequested:  # asked to stop while the source was waiting
                    log.info("stopped while waiting for the source")
                    break
                if frame is None:
                    log.info(
                        "source ended after %d frames (%d undecodable, skipped)",
                        self.summary.frames,
                        source.skipped,
                    )
                    break
                update = pipeline.process(frame)
                self._count(update)
                if not ready:  # model loaded and the camera delivered a frame
                    description = source.description
                    # "camera ok" is logged before READY=1, so the journal shows it before
                    # systemd's "Started" (make vm-test's start step saw the two race).
                    self.set_health("ok", f"{description}: delivering frames")
                    self.notifier.ready(f"watching {description}")
                    ready = True
                self.notifier.watchdog()
        finally:
            self.notifier.stopping()
            close_sinks(sinks)
            self.summary.sinks = sink_stats(sinks)
            source.close()
            self.summary.seconds = time.monotonic() - started
            self.summary.faces = pipeline.faces
            self.summary.skipped = source.skipped
        # Sinks that promise delivery (MQTT) say how many events they lost.
        lost = sum(sink.events_lost for sink in sinks)
        if lost and not source.live:
            # A file run is a batch job: its result is incomplete, so its status must say so (a
            # live camera's daemon keeps going through outages and counts what it dropped).
            from moodcam.urls import redact_url

            log.error(
                "MQTT: %d mood event(s) of this run were not delivered to %s; exit status %d",
                lost,
                redact_url(cfg.mqtt.url),
                EXIT_BROKER,
            )
            return EXIT_BROKER
        dropped = sum(sink.stats().get("lines_dropped", 0) for sink in sinks)
        if dropped and not source.live:
            # Likewise the mood log: a file run whose log lost lines (a full disk) did not do
            # its job, and exit 0 would say it had.
            log.error(
                "mood log %s: %d line(s) of this run were not written (%s); exit status %d",
                cfg.log.path,
                dropped,
                sink_error(sinks),
                EXIT_SINK,
            )
            return EXIT_SINK
        return EXIT_OK

    def _report_lost_at_start(self, error: SourceError) -> None:
        """A camera that cannot be opened at start is `lost` too: with MQTT on, the retained
        health says so before the exit 6, instead of the previous run's `ok`. One message from a
        client of its own (moodcam.comms.mqtt.publish_retained): no sinks are started for it,
        and a service already running under this device id keeps its session. A missing or
        unreadable file is no camera: nothing is published for it."""
        if error.kind != "camera":
            return
        self.health = health_record("lost", str(error))
        if not self.cfg.mqtt.enabled:
            return
        import json

        from moodcam.comms.mqtt import device_topic, publish_retained

        topic = device_topic(self.cfg.mqtt, self.cfg.device.id, "health")
        payload = json.dumps(self.health, separators=(",", ":")).encode()
        try:
            sent = publish_retained(
                self.cfg.mqtt, topic, payload, self.cfg.device.id, timeout=self.cfg.mqtt.drain_s
            )
        except ValueError as e:  # the broker settings (the run would have said so next)
            sent, why = False, str(e)
        else:
            why = "broker not reached"
        if not sent:
            log.warning("camera lost at start; not reported on %s: %s", topic, why)

    def wait(self, seconds: float) -> None:
        """The source's reconnect backoff and real-time pacing: sleeps through the notifier, so
        systemd's watchdog stays fed, and raises StopRequested as soon as a stop is asked."""
        if self.notifier.sleep(seconds, should_stop=self.stop.is_set):
            raise StopRequested

    def set_health(self, state: str, detail: str) -> None:
        """Record the camera's health and tell systemd and every sink that listens (see the
        module docstring); repeats of the current state are ignored."""
        previous = self.health["camera"]
        if state != "ok" and self.stop.is_set():
            # A read that failed because a stop interrupted it (SIGTERM ends a blocking V4L2
            # read early: seen at every `systemctl stop` in make vm-test) is no camera fault:
            # no degraded health on MQTT, no reconnect; the frame loop ends here.
            raise StopRequested
        if state == previous:
            return
        self.health = health_record(state, detail)
        log.log(logging.INFO if state == "ok" else logging.WARNING, "camera %s: %s", state, detail)
        # READY=1 already carried the first "ok" as its STATUS.
        if not (previous == "starting" and state == "ok"):
            self.notifier.status(f"camera {state}: {detail}")
        for sink in self._sinks:
            try:
                sink.set_health(dict(self.health))
            except Exception as e:  # a sink's bug must not stop the frame loop
                log.error("%s.set_health failed: %s", type(sink).__name__, e)

    def _count(self, update: MoodUpdate) -> None:
        s = self.summary
        s.frames += 1
        if update.changed:
            s.changes += 1
        if update.mood is not None:
            s.moods[update.mood] = s.moods.get(update.mood, 0) + 1
        s.last_mood = update.mood
