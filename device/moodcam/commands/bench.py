"""`moodcam bench`: the model's and the pipeline's speed on this machine, written as JSON
(moodcam.speed measures; bench/ holds the figures and the desktop's benchmarks)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from moodcam.commands.common import (
    DEMO_CLIP,
    add_model_args,
    at_least_one,
    check_writable,
    classifier_for,
    load_config,
)
from moodcam.errors import EXIT_OK, InputError, SinkError


def register(sub: Any) -> argparse.ArgumentParser:
    b = sub.add_parser(
        "bench",
        help="measure model and pipeline speed, write the figures to a JSON file",
        description="Time the model's invoke (and the peer's, with --peer) and the pipeline "
        "over a clip (fast detector against full-frame Haar), and write the figures as JSON.",
    )
    add_model_args(b)
    b.add_argument(
        "--peer", help="the fer package's emotion_model_quantized.tflite, timed side by side"
    )
    b.add_argument("--out", default="bench/results.json", help="where to write the figures")
    b.add_argument("--rounds", type=at_least_one, default=40, help="invoke rounds")
    b.add_argument("--clip", default=str(DEMO_CLIP), help="640x480 clip for the pipeline figures")
    b.add_argument(
        "--passes", type=int, default=3, help="passes over the clip per pipeline (0: skip)"
    )
    b.set_defaults(func=run)
    return b


def run(args: argparse.Namespace) -> int:
    from moodcam import speed

    cfg = load_config(None)
    clf = classifier_for(cfg, args)
    peer = speed.PeerModel(args.peer) if args.peer else None
    results = {
        "machine": speed.machine(),
        "invoke": speed.bench_invoke(clf, peer, rounds=args.rounds),
    }
    clip = Path(args.clip)
    if args.passes > 0 and not clip.is_file():  # the figures must not vanish without a word
        raise InputError(f"--clip {clip}: no such video file (--passes 0 skips the pipeline)")
    check_writable(Path(args.out), "--out")  # before minutes of measuring, not after
    if args.passes > 0:
        results["pipeline"] = speed.bench_pipeline(clf, cfg, clip, passes=args.passes)
    try:
        speed.write_results(results, Path(args.out))
    except OSError as e:
        raise SinkError(f"--out {args.out}: cannot write the figures: {e.strerror or e}") from None
    inv = results["invoke"]
    line = f"invoke median {inv['moodcam']['median_ms']:.3f} ms (1 thread, {clf.runtime})"
    if peer:
        line += (
            f"; peer {inv['peer']['median_ms']:.3f} ms; ratio {inv['moodcam_over_peer_median']:.2f}"
        )
    print(line)
    if "pipeline" in results:
        p = results["pipeline"]
        print(
            f"pipeline: fast {p['fast']['fps']} frames/s (recall {p['fast']['recall']}%), naive "
            f"{p['naive']['fps']} frames/s (recall {p['naive']['recall']}%): {p['speedup']}x"
        )
    print(f"wrote {args.out}")
    return EXIT_OK
