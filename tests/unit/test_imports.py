"""Every module of hub/, devices/ and audio/ imports on its own: no cycle, no order dependence.

An import cycle shows only when a module of the cycle is the first one imported,
so each module is imported in a process where none of ours is loaded yet. Starting
an interpreter per module would cost about 90 times the start-up of FastAPI and
pydantic; instead one interpreter imports the third-party libraries (they cannot
take part in a cycle of ours) and forks once per module, with nothing of ours in
``sys.modules`` but the module's own packages: Python imports a module's package
completely before the module, so a fresh ``import hub.api.health`` is exactly
``import hub.api`` then ``import hub.api.health``, and the child for
``hub.api.health`` is forked from the child that imported ``hub.api``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("hub", "devices", "audio")


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__main__":
                continue  # an entry point: importing it runs the command line
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


MODULES = _modules()

# Runs in the child interpreter: argv[1] is the JSON list of modules, argv[2] a file where
# each process appends JSON lines {module: traceback} ("" when the module imported), each
# in one write to the file opened O_APPEND, so that lines of parallel forks never mix.
_IMPORT_EACH = r"""
import ast, importlib, json, os, pathlib, sys, traceback

OURS = {"hub", "devices", "audio"}
MODULES = json.loads(sys.argv[1])
OUT = os.open(sys.argv[2], os.O_WRONLY | os.O_APPEND)


def report(name, error):
    os.write(OUT, (json.dumps({name: error}) + "\n").encode())


def preload():
    for path in (p for pkg in sorted(OURS) for p in pathlib.Path(pkg).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                if name.split(".")[0] not in OURS:
                    try:
                        importlib.import_module(name)
                    except Exception:
                        pass  # optional (piper...): the import of the module will say


def walk(parent):
    # In a process that has imported ``parent`` (nothing of ours when it is ""): each
    # module directly under it in a fork, then that module's own, forked from there.
    # Two forks at a time per level: the imports are CPU-bound and CI machines have two
    # cores or more.
    depth = parent.count(".") + 1 if parent else 0
    running = {}
    for name in MODULES:
        if name.count(".") != depth or (parent and not name.startswith(parent + ".")):
            continue
        while len(running) >= 2:
            reap(running)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            try:
                importlib.import_module(name)
            except BaseException:
                report(name, traceback.format_exc())
                for sub in MODULES:
                    if sub.startswith(name + "."):
                        report(sub, f"its package {name} does not import")
                os._exit(0)
            report(name, "")
            walk(name)
            os._exit(0)
        running[pid] = name
    while running:
        reap(running)


def reap(running):
    pid, status = os.wait()
    name = running.pop(pid)
    if status:
        report(name, f"importing it (or a module under it) ended the process: {status}")


preload()
assert not [m for m in sys.modules if m.split(".")[0] in OURS], "ours loaded before forking"
walk("")
"""


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("imports") / "results.jsonl"
    out.touch()
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH, json.dumps(MODULES), str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    results: dict[str, str] = {}
    for line in out.read_text().splitlines():
        for name, error in json.loads(line).items():
            results[name] = "\n".join(e for e in (results.get(name), error) if e)
    return results


def test_every_package_is_walked() -> None:
    assert {"hub", "hub.app", "hub.ingest.writer", "devices", "audio"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_imports_on_its_own(imported: dict[str, str], module: str) -> None:
    error = imported.get(module, "no result: the process importing it vanished")
    assert error == "", f"import {module} in a fresh interpreter:\n{error}"
