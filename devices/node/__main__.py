"""``python -m devices.node [--config FILE] [--check]``: run a speaker cluster's node agent.

The config is TOML (deploy/node/install-node.sh writes /etc/langso-node/node.toml): every
field of :class:`devices.node.agent.NodeConfig`, plus ``password_file`` (the MQTT password
in a file of its own, mode 0600). A bad file exits 2 with ``file: key: reason``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import tomllib
from dataclasses import fields
from pathlib import Path
from types import FrameType
from typing import Any

from devices.node.agent import NodeAgent, NodeConfig

DEFAULT_CONFIG = Path("/etc/langso-node/node.toml")
_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "str | None": (str,),
}


class BadConfig(ValueError):
    pass


def load(path: Path) -> NodeConfig:
    """The node's config from ``path``; BadConfig as ``file: key: reason``."""
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise BadConfig(f"{path}: (file): {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise BadConfig(f"{path}: (syntax): {e}") from None
    password_file = data.pop("password_file", None)
    if password_file is not None:
        try:
            data["password"] = Path(str(password_file)).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise BadConfig(f"{path}: password_file: {e.strerror or e}") from None
    known = {f.name: str(f.type) for f in fields(NodeConfig)}
    for key, value in data.items():
        if key not in known:
            raise BadConfig(f"{path}: {key}: unknown key (one of {', '.join(known)})")
        kinds = _TYPES.get(known[key], (object,))
        if isinstance(value, bool) and bool not in kinds:
            raise BadConfig(f"{path}: {key}: must be {known[key]}, not {value!r}")
        if not isinstance(value, kinds):
            raise BadConfig(f"{path}: {key}: must be {known[key]}, not {value!r}")
    for key in ("id", "site", "amp_pin"):
        if key not in data:
            raise BadConfig(f"{path}: {key}: required")
    if not 0 <= data["amp_pin"] <= 27:
        raise BadConfig(f"{path}: amp_pin: a BCM GPIO pin number 0..27")
    return NodeConfig(**data)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m devices.node", description=__doc__)
    ap.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="the node's TOML file")
    ap.add_argument("--check", action="store_true", help="check the config and exit")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = load(args.config)
    except BadConfig as e:
        print(e, file=sys.stderr)
        return 2
    if args.check:
        print(f"{args.config}: ok (node {config.id}, site {config.site})")
        return 0
    agent = NodeAgent(config)

    def stop(signum: int, frame: FrameType | None) -> None:
        agent.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    agent.start()
    try:
        agent.run()
    finally:
        agent.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
