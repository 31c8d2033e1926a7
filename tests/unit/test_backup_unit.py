"""The nightly backup unit runs `langso backup` as the hub unit runs `langso run`: the same
program, settings and data directory, with a timeout."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

from hub.cli import build_parser

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"


def service(name: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNITS / name, encoding="utf-8")
    return parser["Service"]


def test_the_backup_unit_calls_langso_backup_with_a_timeout() -> None:
    backup, hub = service("langso-backup.service"), service("langso-hub.service")
    argv, run = shlex.split(backup["ExecStart"]), shlex.split(hub["ExecStart"])
    assert argv[0] == run[0] and argv[1] == "backup"
    args = build_parser().parse_args(argv[1:])  # options the command really has
    assert args.config == run[run.index("--config") + 1]
    assert (args.keep, args.max_mib) == (15, 1024)
    for key in ("User", "WorkingDirectory", "Environment", "EnvironmentFile", "ReadWritePaths"):
        assert backup[key] == hub[key], key
    assert backup["TimeoutStartSec"] == "30min"
