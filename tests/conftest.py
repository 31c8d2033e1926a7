"""Shared fixtures: a real Mosquitto per test session (and fresh ones for fault tests)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.broker import Broker

os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")


def _need(binary: str) -> None:
    if shutil.which(binary) or Path(f"/usr/sbin/{binary}").exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{binary} is missing on CI: the Makefile must install it")
    pytest.skip(f"{binary} is not installed (run `make test`, which installs it)")


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A Mosquitto shared by the session's tests; tests use their own topics or site ids."""
    _need("mosquitto")
    b = Broker(tmp_path_factory.mktemp("mosquitto"))
    yield b
    b.stop()


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Broker]:
    """A Mosquitto of this test alone, for tests that stop, kill or restart it."""
    _need("mosquitto")
    b = Broker(tmp_path / "mosquitto")
    yield b
    b.stop()
