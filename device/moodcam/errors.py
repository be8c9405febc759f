"""Errors a user can act on, each with its own exit status (see `moodcam --help`)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 1  # a bug: traceback printed with --debug
EXIT_USAGE = 2  # argparse's own
EXIT_CONFIG = 3
EXIT_MODEL = 4
EXIT_INPUT = 5  # an image given to `classify` could not be read
EXIT_SOURCE = 6  # camera missing, video unreadable
EXIT_BROKER = 7  # `doctor`; and a file run whose MQTT events were not all delivered (a live daemon keeps retrying)
EXIT_SINK = 8  # a sink that cannot start (GPIO pin busy, log path unusable)


class MoodcamError(Exception):
    """One line for the user, naming what is wrong and where; `exit_code` says which kind."""

    exit_code = EXIT_INTERNAL


class SinkError(MoodcamError):
    """A sink or an output file that cannot be used (see moodcam.sinks)."""

    exit_code = EXIT_SINK


class ModelError(MoodcamError):
    exit_code = EXIT_MODEL


class InputError(MoodcamError):
    exit_code = EXIT_INPUT
