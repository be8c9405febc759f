"""The fuzzing harness's short pass (tests/fuzz.py has the harness and what it asserts for every
input); `make fuzz` runs it for minutes and writes the counts to bench/fuzz.json."""

from __future__ import annotations

import os
from pathlib import Path

from tests.fuzz import Tally, World, campaign

# Under a minute of `make test`; MOODCAM_FUZZ_SECONDS=0 skips the generating.
SHORT_S = float(os.environ.get("MOODCAM_FUZZ_SECONDS", "40"))


def test_random_inputs_to_every_command_get_an_answer_not_a_crash(tmp_path: Path) -> None:
    tally = Tally()
    campaign(World.make(tmp_path / "world"), SHORT_S, tally, shrink=False)  # raises on a failure
    print(f"\nfuzz: {tally.inputs} inputs, by command {dict(tally.by_command)}, "
          f"exit statuses {dict(tally.statuses)}")  # fmt: skip
    assert tally.inputs >= (5 if SHORT_S > 0 else 0)
