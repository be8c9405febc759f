"""The layering, read from the code's imports (every `import`, also those inside functions):

- device/moodcam (what runs on the Pi) imports neither training/, convert/, bench/, demo/, tests/
  nor TensorFlow/Keras;
- training/ does not import convert/ (convert/ builds on training/, not the other way);
- a sink imports no other sink (only the base class, moodcam.sinks) and no command;
- only moodcam.commands (and the entry point moodcam.cli) import moodcam.commands;
- moodcam.comms (transports) imports no sink and no command;
- no import cycle among moodcam, training, convert, bench and demo (any import, also in a function).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "device"

# Imports that break a rule today, each with the reason it is still there. The test fails on any
# other, and on an entry here that is no longer true (so the list only shrinks).
KNOWN: dict[tuple[str, str], str] = {}


def module_name(path: Path) -> str:
    base = PACKAGE if path.is_relative_to(PACKAGE) else ROOT
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> Iterator[str]:
    """The absolute module names `path` imports (`from a import b` gives a and a.b)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module_name(path).rsplit(".", 0 if path.name == "__init__.py" else 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against the importing package
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            yield module
            # `from a import b` imports the module a.b when there is one (else b is a name in a).
            yield from (f"{module}.{a.name}" for a in node.names if is_module(f"{module}.{a.name}"))


def is_module(name: str) -> bool:
    for base in (PACKAGE, ROOT):
        path = base.joinpath(*name.split("."))
        if path.with_suffix(".py").is_file() or (path / "__init__.py").is_file():
            return True
    return False


def sources(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def within(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def violations(files: list[Path], forbidden: tuple[str, ...], allowed=lambda m, n: False):
    found = []
    for path in files:
        me = module_name(path)
        for name in set(imports(path)):
            if within(name, *forbidden) and not allowed(me, name) and (me, name) not in KNOWN:
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    return sorted(found)


def test_the_device_imports_nothing_of_the_desktop() -> None:
    desktop = ("training", "convert", "bench", "demo", "tests", "tensorflow", "keras", "tf_keras")
    assert violations(sources(PACKAGE / "moodcam"), desktop) == []


def test_training_does_not_import_convert() -> None:
    assert violations(sources(ROOT / "training"), ("convert",)) == []


def test_a_sink_imports_no_other_sink_and_no_command() -> None:
    sinks = [p for p in sources(PACKAGE / "moodcam" / "sinks") if p.name != "__init__.py"]
    assert sinks, "no sinks found: the test would pass on nothing"

    def own(me: str, name: str) -> bool:  # its own module, or the package (the base class)
        return name == me or name.startswith(me + ".") or name == "moodcam.sinks"

    assert violations(sinks, ("moodcam.sinks", "moodcam.commands", "moodcam.cli"), own) == []


def test_only_the_commands_import_the_commands() -> None:
    rest = [
        p
        for p in sources(PACKAGE / "moodcam")
        if not within(module_name(p), "moodcam.commands", "moodcam.cli")
    ]
    assert violations(rest, ("moodcam.commands", "moodcam.cli")) == []


def test_the_transports_import_no_sink_and_no_command() -> None:
    comms = sources(PACKAGE / "moodcam" / "comms")
    assert violations(comms, ("moodcam.sinks", "moodcam.commands", "moodcam.cli")) == []


def test_no_import_cycle() -> None:
    """Among moodcam, training, convert, bench and demo, counting every import (also those inside
    functions, which run later but still tie the modules together)."""
    paths = sources(PACKAGE / "moodcam") + [
        p for top in ("training", "convert", "bench", "demo") for p in sources(ROOT / top)
    ]
    files = {module_name(p): p for p in paths}
    graph = {
        me: {n for n in imports(path) if n in files and n != me and not me.startswith(n + ".")}
        for me, path in files.items()
    }  # a module's own package is imported before it anyway: that edge is no cycle
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            pytest.fail("import cycle: " + " -> ".join([*path[path.index(node) :], node]))
        if node in done:
            return
        for dep in sorted(graph[node]):
            visit(dep, [*path, node])
        done.add(node)

    for module in sorted(graph):
        visit(module, [])


def test_every_known_exception_is_still_true() -> None:
    for (me, name), why in KNOWN.items():
        path = ROOT / (me.replace(".", "/") + ".py")
        assert name in set(imports(path)), f"{me} no longer imports {name}: drop it ({why})"
