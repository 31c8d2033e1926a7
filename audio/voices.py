"""Voices: the installed Piper models and the engine that routes each voice to its synthesiser.

Between the renderer and the synthesisers (``audio.tts``). A voice id is what an
announcement names: ``north`` / ``central`` / ``south`` (or an espeak-ng voice) for
espeak-ng, ``piper:NAME`` for a Piper model installed as ``NAME.onnx`` + ``NAME.onnx.json``
in the voices folder (``<data_dir>/voices``; ``langso voice add`` checks and installs).

:class:`VoiceEngine` is the one engine the renderer sees. espeak-ng stays the default and
the fallback: when a Piper voice cannot speak (its model missing or damaged, Piper
crashing or too slow, piper-tts not installed), the text is read by espeak-ng's
``fallback`` voice, a WARNING says why, and the engine keeps the reason for the API
(``GET /api/voices``) and ``langso doctor``: never silent, never no audio.

The render cache follows the models: the engine's ``identity`` holds each model's size
and modification time, and whether it is marked failing. A model that failed once is
marked (a small ``NAME.failed`` file, so a restart remembers) and read by espeak-ng
until it is installed again: the render that fell back was cached under the working
model's key, and the mark makes sure that key is never asked for again. A voice
removed with ``langso voice remove`` leaves ``NAME.removed``, so announcements that
named it fall back instead of failing; a ``piper:`` name never installed here is refused
(422) like an unknown espeak-ng voice.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audio.errors import TTSError, UnknownVoice
from audio.tts import EspeakNG, Piper, PiperMissing, PiperRun, piper_importable

__all__ = [
    "PIPER_PREFIX",
    "Fallback",
    "InvalidVoiceModel",
    "VoiceEngine",
    "VoiceFolder",
    "VoiceModel",
    "read_model",
]

log = logging.getLogger(__name__)

PIPER_PREFIX = "piper:"
#: A model's name: its file name without ``.onnx``; short enough that ``piper:NAME`` fits
#: the announcements' 40-character voice field.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,33}")
#: A model's config is a few kB (its phoneme table); a model a few tens to 120 MB.
MAX_CONFIG_BYTES = 1 << 20
MAX_MODEL_BYTES = 300 << 20
_MIN_MODEL_BYTES = 1024
#: What a test render says when a voice is added or listened to without a text.
SAMPLE_TEXT = {
    "vi": "Xin chào bà con. Đây là giọng đọc thử của loa truyền thanh thôn.",
    "en": "Hello everyone. This is a test of the village loudspeakers.",
}


class InvalidVoiceModel(TTSError, ValueError):
    """A voice model file (or its ``.onnx.json``) that cannot be installed, and why."""

    status = 422


@dataclass(frozen=True, slots=True)
class VoiceModel:
    """A Piper model pair, as read from its files."""

    name: str
    model: Path
    config: Path
    sample_rate: int
    language: str  # e.g. vi_VN, en_US ("" when the config does not say)
    language_name: str
    quality: str
    signature: str  # sizes and modification times of both files

    @property
    def id(self) -> str:
        return PIPER_PREFIX + self.name

    @property
    def label(self) -> str:
        speaker = self.name.split("-")[1] if self.name.count("-") >= 2 else self.name
        lang = self.language_name or self.language or "?"
        return f"{speaker} ({lang}{', ' + self.quality if self.quality else ''}, Piper)"


def _signature(*paths: Path) -> str:
    parts = []
    for p in paths:
        st = p.stat()
        parts.append(f"{st.st_size}.{st.st_mtime_ns}")
    return "/".join(parts)


def _table(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def read_model(model: Path, config: Path | None = None, *, name: str | None = None) -> VoiceModel:
    """Check a model pair and read what the hub needs from its config.

    The config must be JSON with a sample rate (``audio.sample_rate``) and a phoneme
    table; the model must be a non-trivial file. Whether it speaks is for a test render
    (:meth:`VoiceFolder.install`)."""
    config = config or Path(f"{model}.json")
    name = name or model.name.removesuffix(".onnx")
    if not NAME_RE.fullmatch(name):
        raise InvalidVoiceModel(
            f"voice name {name!r}: use letters, digits, '_', '.', '-' (at most 34), "
            "e.g. vi_VN-vais1000-medium"
        )
    for path, what in ((model, "model"), (config, "model config (.onnx.json)")):
        if not path.is_file():
            raise InvalidVoiceModel(f"the {what} {path} does not exist")
    size = model.stat().st_size
    if not _MIN_MODEL_BYTES <= size <= MAX_MODEL_BYTES:
        raise InvalidVoiceModel(
            f"{model.name}: {size} bytes is not a Piper model (expected 1 kB to "
            f"{MAX_MODEL_BYTES >> 20} MB)"
        )
    if config.stat().st_size > MAX_CONFIG_BYTES:
        raise InvalidVoiceModel(f"{config.name}: larger than 1 MB, not a Piper model config")
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidVoiceModel(f"{config.name} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidVoiceModel(f"{config.name}: a JSON object was expected")
    audio = _table(data, "audio")
    rate = audio.get("sample_rate")
    if not isinstance(rate, int) or isinstance(rate, bool) or not 8000 <= rate <= 48000:
        raise InvalidVoiceModel(
            f"{config.name}: audio.sample_rate is missing or not 8000..48000 Hz"
        )
    if not isinstance(data.get("phoneme_id_map"), dict):
        raise InvalidVoiceModel(f"{config.name}: no phoneme_id_map: not a Piper model config")
    lang = _table(data, "language")
    espeak = _table(data, "espeak")
    return VoiceModel(
        name=name,
        model=model,
        config=config,
        sample_rate=rate,
        language=str(lang.get("code") or espeak.get("voice") or ""),
        language_name=str(lang.get("name_native") or lang.get("name_english") or ""),
        quality=str(audio.get("quality") or ""),
        signature=_signature(model, config),
    )


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class VoiceFolder:
    """``<data_dir>/voices``: the installed models, their failure marks and tombstones.

    Read by the hub (each render asks for the engine's identity: one directory listing,
    configs parsed again only when their files change) and written by ``langso voice``.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._parsed: dict[str, tuple[str, VoiceModel | str]] = {}
        self._lock = threading.Lock()

    def scan(self) -> tuple[list[VoiceModel], dict[str, str]]:
        """(the usable models by name, {name: why not} for pairs that are not)."""
        models: list[VoiceModel] = []
        broken: dict[str, str] = {}
        try:
            names = sorted(
                p.name.removesuffix(".onnx.json")
                for p in self.directory.iterdir()
                if p.name.endswith(".onnx.json") and not p.name.startswith(".")
            )
        except FileNotFoundError:
            return [], {}
        for name in names:
            found = self._read(name)
            if isinstance(found, VoiceModel):
                models.append(found)
            else:
                broken[name] = found
        return models, broken

    def _read(self, name: str) -> VoiceModel | str:
        model, config = self.directory / f"{name}.onnx", self.directory / f"{name}.onnx.json"
        try:
            sig = _signature(model, config)
        except OSError:
            return f"{model.name} is missing"
        with self._lock:
            cached = self._parsed.get(name)
            if cached is not None and cached[0] == sig:
                return cached[1]
        try:
            found: VoiceModel | str = read_model(model, config, name=name)
        except InvalidVoiceModel as exc:
            found = str(exc)
        with self._lock:
            self._parsed[name] = (sig, found)
        return found

    def get(self, name: str) -> VoiceModel | str | None:
        """The model, why it cannot be used, or None when the name was never installed."""
        if not NAME_RE.fullmatch(name):
            return None
        found = self._read(name)
        if isinstance(found, VoiceModel):
            return found
        if (self.directory / f"{name}.onnx.json").exists():
            return found
        if (self.directory / f"{name}.removed").exists():
            return f"voice {name} was removed (langso voice remove)"
        if (self.directory / f"{name}.onnx").exists():
            return f"{name}.onnx.json is missing"
        return None

    # --- failure marks -------------------------------------------------------------------

    def failure(self, model: VoiceModel) -> str | None:
        """Why this very model (same files) is marked failing, or None."""
        try:
            mark = json.loads((self.directory / f"{model.name}.failed").read_text("utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(mark, dict) or mark.get("signature") != model.signature:
            return None
        return str(mark.get("reason") or "failed")

    def mark_failed(self, model: VoiceModel, reason: str) -> None:
        mark = {"signature": model.signature, "reason": reason, "at": time.time()}
        try:
            _write_atomic(self.directory / f"{model.name}.failed", json.dumps(mark))
        except OSError as exc:  # a read-only folder: the mark lives until the hub restarts
            log.warning("cannot mark voice %s failing in %s: %s", model.name, self.directory, exc)

    # --- installing and removing (langso voice) -----------------------------------------

    def install(
        self,
        model: Path,
        config: Path | None = None,
        *,
        name: str | None = None,
        force: bool = False,
        timeout_s: float = 180.0,
        python: str = sys.executable,
    ) -> tuple[VoiceModel, Piper]:
        """Check the pair, render a test sentence with it in a worker, then copy it in.

        Returns the installed model and the engine that rendered the test (its
        ``last_run`` has the worker's figures). Refuses a name already installed unless
        ``force``."""
        found = read_model(model, config, name=name)
        target = self.directory / f"{found.name}.onnx"
        if not force and (target.exists() or target.with_suffix(".onnx.json").exists()):
            raise InvalidVoiceModel(
                f"voice {found.name} is already installed: add --force to replace it"
            )
        if not piper_importable(python):
            raise PiperMissing("piper-tts is not installed: pip install 'langso-hub[voice]'")
        engine = Piper(model=found.model, config=found.config, timeout_s=timeout_s, python=python)
        with tempfile.TemporaryDirectory(prefix="voice-test-") as tmp:
            lang = found.language[:2].lower()
            engine.synthesize(
                SAMPLE_TEXT.get(lang, SAMPLE_TEXT["en"]), voice=None, out_wav=Path(tmp) / "t.wav"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        # The config first, the model last: a listing keys on the config, and a pair
        # without its model reads as "missing", never as a half-copied model.
        for src, dst in ((found.config, f"{found.name}.onnx.json"), (found.model, target.name)):
            tmp_path = self.directory / f".{dst}.tmp"
            shutil.copyfile(src, tmp_path)
            os.replace(tmp_path, self.directory / dst)
        for leftover in (f"{found.name}.failed", f"{found.name}.removed"):
            (self.directory / leftover).unlink(missing_ok=True)
        return read_model(target, name=found.name), engine

    def remove(self, name: str) -> None:
        """Remove a model; announcements that named it are read by espeak-ng from now on."""
        if self.get(name) is None or (self.directory / f"{name}.removed").exists():
            raise InvalidVoiceModel(f"no voice {name!r} is installed: see `langso voice list`")
        _write_atomic(self.directory / f"{name}.removed", json.dumps({"at": time.time()}))
        for suffix in (".onnx", ".onnx.json", ".failed"):
            (self.directory / f"{name}{suffix}").unlink(missing_ok=True)


@dataclass(frozen=True, slots=True)
class _Reading:
    """What one render asks a voice to say, and how: what espeak-ng says when it stands in."""

    text: str
    out_wav: Path
    rate: float
    pause_s: float


@dataclass(frozen=True, slots=True)
class Fallback:
    """A text a Piper voice should have read and espeak-ng read instead."""

    at: float  # epoch seconds
    voice: str
    reason: str


class VoiceEngine:
    """The renderer's engine: each voice id to espeak-ng or a Piper worker, with fallback.

    Runs in the renderer's thread, one render at a time (the renderer's lock); the record
    of fallbacks has its own lock because the API reads it from its threads.
    """

    def __init__(
        self,
        espeak: EspeakNG,
        folder: VoiceFolder,
        *,
        default_voice: str,
        fallback_voice: str = "north",
        timeout_s: float = 180.0,
        python: str = sys.executable,
    ) -> None:
        self.espeak = espeak
        self.folder = folder
        self.default_voice = default_voice
        self.fallback_voice = espeak.resolve_voice(fallback_voice)
        self.timeout_s = timeout_s
        self._python = python
        self.piper_installed = piper_importable(python)
        self._failed: dict[str, tuple[str, str]] = {}  # name -> (signature, reason)
        self._lock = threading.Lock()
        #: The last Piper worker's figures (time, peak memory): for the benchmark.
        self.last_run: PiperRun | None = None
        self.fallbacks: deque[Fallback] = deque(maxlen=50)
        self.fallback_count = 0

    @property
    def name(self) -> str:
        return "voices"

    @property
    def identity(self) -> str:
        models, _ = self.folder.scan()
        piper = ",".join(f"{m.name}={m.signature}{'!' if self.failure(m) else ''}" for m in models)
        ready = "piper" if self.piper_installed else "no-piper"
        return f"{self.espeak.identity}|fallback={self.fallback_voice}|{ready}|{piper}"

    def failure(self, model: VoiceModel) -> str | None:
        """Why this model is known not to speak (this run or a mark on disk), or None."""
        with self._lock:
            known = self._failed.get(model.name)
        if known is not None and known[0] == model.signature:
            return known[1]
        return self.folder.failure(model)

    def check_voice(self, voice: str | None) -> str:
        """The voice id, or :class:`UnknownVoice` (422) naming what can be used."""
        voice = voice or self.default_voice
        if voice.startswith(PIPER_PREFIX):
            if self.folder.get(voice.removeprefix(PIPER_PREFIX)) is None:
                installed = [m.id for m in self.folder.scan()[0]]
                raise UnknownVoice(
                    f"unknown voice {voice!r}: installed Piper voices: "
                    f"{', '.join(installed) or 'none'} (add one with `langso voice add`); "
                    "or north, central, south"
                )
            return voice
        self.espeak.resolve_voice(voice)
        return voice

    def synthesize(
        self,
        text: str,
        *,
        voice: str | None,
        out_wav: Path,
        rate: float = 1.0,
        pause_s: float = 0.0,
    ) -> None:
        voice = voice or self.default_voice
        how = _Reading(text, out_wav, rate, pause_s)
        if not voice.startswith(PIPER_PREFIX):
            self.espeak.synthesize(text, voice=voice, out_wav=out_wav, rate=rate, pause_s=pause_s)
            return
        if voice != self.default_voice:
            self.check_voice(voice)  # a name never installed here is the request's mistake
        found = self.folder.get(voice.removeprefix(PIPER_PREFIX))
        if not isinstance(found, VoiceModel):
            self._fall_back(how, voice, found or "not installed")
            return
        if not self.piper_installed:
            self._fall_back(how, voice, "piper-tts is not installed")
            return
        failing = self.failure(found)
        if failing is not None:
            reason = f"{failing} (marked failing; `langso voice add --force` installs it anew)"
            self._fall_back(how, voice, reason)
            return
        piper = Piper(
            model=found.model, config=found.config, timeout_s=self.timeout_s, python=self._python
        )
        try:
            piper.synthesize(text, voice=None, out_wav=out_wav, rate=rate, pause_s=pause_s)
            self.last_run = piper.last_run
        except PiperMissing as exc:
            self.piper_installed = False
            self._fall_back(how, voice, str(exc))
        except TTSError as exc:
            with self._lock:
                self._failed[found.name] = (found.signature, str(exc))
            self.folder.mark_failed(found, str(exc))
            out_wav.unlink(missing_ok=True)
            self._fall_back(how, voice, str(exc))

    def _fall_back(self, how: _Reading, voice: str, reason: str) -> None:
        log.warning(
            "voice %s cannot speak (%s): espeak-ng's %s voice reads the text instead",
            voice,
            reason,
            self.fallback_voice,
        )
        with self._lock:
            self.fallbacks.append(Fallback(time.time(), voice, reason))
            self.fallback_count += 1
        self.espeak.synthesize(
            how.text,
            voice=self.fallback_voice,
            out_wav=how.out_wav,
            rate=how.rate,
            pause_s=how.pause_s,
        )

    def voices(self) -> list[dict[str, Any]]:
        """Every voice one can choose, for the API and the compose page."""
        out: list[dict[str, Any]] = [
            {
                "id": alias,
                "label": alias,
                "engine": "espeak-ng",
                "language": "vi",
                "default": alias == self.default_voice,
                "status": "ok",
            }
            for alias in ("north", "central", "south")
        ]
        models, broken = self.folder.scan()
        for m in models:
            failing = self.failure(m)
            status = "ok" if self.piper_installed else "piper-tts is not installed"
            out.append(
                {
                    "id": m.id,
                    "label": m.label,
                    "engine": "piper",
                    "language": m.language,
                    "sample_rate": m.sample_rate,
                    "default": m.id == self.default_voice,
                    "status": f"failing: {failing}" if failing else status,
                }
            )
        for name, why in broken.items():
            out.append(
                {
                    "id": PIPER_PREFIX + name,
                    "label": name,
                    "engine": "piper",
                    "language": "",
                    "default": PIPER_PREFIX + name == self.default_voice,
                    "status": f"broken: {why}",
                }
            )
        return out

    def last_fallback(self) -> Fallback | None:
        with self._lock:
            return self.fallbacks[-1] if self.fallbacks else None
