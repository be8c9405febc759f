"""`moodcam doctor`: one line per thing the daemon needs (moodcam.doctor has the checks)."""

from __future__ import annotations

import argparse
from typing import Any

from moodcam.commands.common import (
    add_model_args,
    apply_flags,
    load_config,
    nonempty,
    positive_seconds,
    security_warnings,
)


def register(sub: Any) -> argparse.ArgumentParser:
    d = sub.add_parser(
        "doctor",
        help="check camera, model, GPIO, broker, disk and service: one line each",
        description="Check what the daemon needs, one line each (ok, FAIL or skip, and what to "
        "do): the model and its card, the camera, GPIO, the broker, the log's disk and the "
        "systemd service. Exit status: that of the first failure, 0 if none.",
    )
    d.add_argument("--config", type=nonempty, help="TOML config file")
    d.add_argument(
        "--source", type=nonempty, help="check this source instead of the configured one"
    )
    d.add_argument("--mqtt", type=nonempty, metavar="URL", help="check this broker")
    d.add_argument(
        "--timeout",
        type=positive_seconds,
        default=5.0,
        help="seconds to wait for camera and broker",
    )
    add_model_args(d)
    d.set_defaults(func=run)
    return d


def run(args: argparse.Namespace) -> int:
    from moodcam.doctor import run_checks

    cfg = apply_flags(load_config(args.config), args)
    for warning in security_warnings(cfg):
        print(f"warn  security {warning}")
    return run_checks(cfg, timeout=args.timeout)
