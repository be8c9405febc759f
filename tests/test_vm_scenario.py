"""`make vm-test`'s scripts without booting a VM (that takes minutes and root: make vm-test).

The scenario's structure: every step names a function it defines, each phase ends the way the
host expects (a reboot, then a power-off), and the probe is valid Python; the README lines that
convert.figures makes from bench/vm.json show each step and figure. (shellcheck of .ci/vm-test and
.ci/vm-scenario: tests/test_install.py.)
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from convert.figures import VM_FIGURES, vm_lines

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = (ROOT / ".ci" / "vm-scenario").read_text()


def test_every_step_runs_a_function_the_scenario_defines() -> None:
    steps = re.findall(r"^\s+step ([a-z-]+) (s_[a-z_]+)$", SCENARIO, re.M)
    defined = set(re.findall(r"^(s_[a-z_]+)\(\) \{$", SCENARIO, re.M))
    names = [n for n, _ in steps]
    assert len(steps) >= 15 and len(set(names)) == len(names)
    assert {f for _, f in steps} == defined, "a step without a function, or a function unused"
    # Phase 1 ends in a reboot, phase 2 in a power-off, both after the last step of the phase.
    phase1, phase2 = SCENARIO.split("\n1)\n")[1].split("\n2)\n")
    assert (
        phase1.rstrip().endswith("systemctl reboot\n  ;;".strip()) or "systemctl reboot" in phase1
    )
    assert "finish" in phase2 and "systemctl poweroff" in SCENARIO


def test_every_figure_the_scenario_records_reaches_the_readme() -> None:
    recorded = set(re.findall(r"^\s+figure ([a-z_]+) ", SCENARIO, re.M))
    # systemd and rss_minutes are shown inside other cells (the column head, the RSS cell).
    assert {"exposure_web_live", "camera_lost_s", "rss_mb"} <= recorded
    assert recorded - {"systemd", "rss_minutes"} <= {key for key, _, _ in VM_FIGURES}


def test_probe_is_python() -> None:
    ast.parse((ROOT / ".ci" / "vm_probe.py").read_text())


def test_vm_lines_show_each_step_and_figure() -> None:
    run = {
        "date": "2026-12-06 08:00 UTC", "commit": "0123456789abcdef", "accel": "tcg",
        "finished": False, "passed": 1, "failed": 1,
        "steps": [{"step": "install", "result": "PASS", "seconds": 97.5, "detail": ""},
                  {"step": "watchdog", "result": "FAIL", "seconds": 40.0, "detail": "x"}],
        "figures": {"systemd": 252, "boot_s": 34.5, "rss_mb": 85.1, "rss_minutes": 5,
                    "exposure_web_live": 1.1},
        "run": {"image_built": False, "total_s": 1500.0},
    }  # fmt: skip
    text = "\n".join(vm_lines({"bookworm": run}))
    assert "bookworm: 1 of 2 steps passed, the scenario did not finish" in text
    assert "| install | pass (97.5 s) |" in text and "| watchdog | fail (40 s) |" in text
    assert "85.1 MB after 5 min" in text and "systemd 252, TCG" in text and "`0123456789`" in text
    assert "| `systemd-analyze security` on the live dashboard unit | 1.1 |" in text
    assert "| the whole run, image and VM | 25.0 min (root image cached) |" in text
    assert vm_lines({}) == []
    assert len({key for key, _, _ in VM_FIGURES}) == len(VM_FIGURES)


def test_the_figure_scripts_need_only_the_standard_library() -> None:
    """.ci/vm-test runs bench/vm_figures.py and convert.figures with the host's python3, which has
    no moodcam, numpy or cv2 (an import of moodcam there once failed the README's update)."""
    import sys

    allowed = set(sys.stdlib_module_names) | {"__future__", "convert"}
    for path in (ROOT / "bench" / "vm_figures.py", ROOT / "convert" / "figures.py"):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
        assert imported <= allowed, (path, imported - allowed)
