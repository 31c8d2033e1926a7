"""Text to speech: the engine the renderer asks for a WAV of an announcement's words.

Engines speak the text they are given. The renderer (``audio.render``) runs
``audio.normalize_vi.normalize`` first, so every engine hears the same words and the
render cache is keyed on what is actually spoken.

Every engine takes a speaking ``rate`` (a factor of its normal speed: slower for the
elderly, on a horn that echoes) and a ``pause_s`` of silence after each sentence
(``audio/sentences.py`` splits them), so both are heard whatever voice reads.

Engines run in the caller's thread (a worker, never the event loop): each call is one
subprocess with a timeout, and the text goes through stdin, never the command line, so
a text starting with ``-`` cannot turn into an option.

Piper runs in a worker process of its own per render (``audio/piper_worker.py``): its
model never sits in the hub. Which engine reads which voice, and espeak-ng standing in
when Piper cannot, is ``audio/voices.py``'s.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from audio.errors import TTSError, UnknownVoice
from audio.sentences import join_wavs, split_sentences

__all__ = [
    "VOICE_ALIASES",
    "EspeakNG",
    "Piper",
    "PiperMissing",
    "PiperRun",
    "TTSEngine",
    "make_engine",
    "piper_importable",
]

#: The folder that holds the ``audio`` package: on the worker's import path.
_PACKAGE_ROOT = Path(__file__).resolve().parent.parent

# What a head of village picks in the form, and the espeak-ng voice that reads it.
VOICE_ALIASES = {
    "north": "vi",
    "central": "vi-vn-x-central",
    "south": "vi-vn-x-south",
}


class TTSEngine(Protocol):
    @property
    def name(self) -> str:
        """Short engine name for logs: ``espeak-ng``, ``piper``."""
        ...

    @property
    def identity(self) -> str:
        """Everything about the engine that changes its output (version, speed, model).

        Part of the render cache key: a new espeak-ng or another speed re-renders.
        """
        ...

    def synthesize(
        self,
        text: str,
        *,
        voice: str | None,
        out_wav: Path,
        rate: float = 1.0,
        pause_s: float = 0.0,
    ) -> None:
        """Write ``text`` spoken by ``voice`` (None: the engine's default) to ``out_wav``,
        at ``rate`` times the engine's normal speed, with ``pause_s`` of silence added
        after each sentence but the last."""
        ...


def _which(binary: str, package: str) -> str:
    found = shutil.which(binary)
    if found is None:
        raise TTSError(f"{binary} is not installed: install it with `apt install {package}`")
    return found


def _run(argv: list[str], *, text: str, timeout_s: float, what: str) -> None:
    try:
        proc = subprocess.run(
            argv,
            input=text.encode("utf-8"),
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise TTSError(f"{what} took longer than {timeout_s:g} s: shorten the text") from exc
    except OSError as exc:
        raise TTSError(f"{what} could not start: {exc}") from exc
    if proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", "replace").strip()[-500:]
        raise TTSError(f"{what} failed (exit {proc.returncode}): {detail or 'no message'}")


def _check_wav(out_wav: Path, what: str) -> None:
    # A RIFF header alone is 44 bytes; anything that small holds no speech.
    if not out_wav.exists() or out_wav.stat().st_size <= 44:
        raise TTSError(f"{what} produced no audio: is the voice data installed?")


class EspeakNG:
    """espeak-ng, the formant synthesiser packaged by Debian with three Vietnamese voices.

    ``amplitude`` is 60 rather than espeak's 100: at 100 the Vietnamese voices clip
    (samples at ±1.0, measured), and the renderer sets the final level anyway.
    """

    def __init__(
        self,
        *,
        binary: str = "espeak-ng",
        voice: str = "north",
        speed: int = 150,
        pitch: int = 50,
        amplitude: int = 60,
        timeout_s: float = 60.0,
    ) -> None:
        if not 80 <= speed <= 450:
            raise TTSError(f"espeak-ng speed {speed} is out of range: use 80..450 words/min")
        self._binary = _which(binary, "espeak-ng")
        self._speed, self._pitch, self._amplitude = speed, pitch, amplitude
        self._timeout_s = timeout_s
        self._version = self._query(["--version"]).strip()
        self._voices = self._installed_voices()
        self._default_voice = self.resolve_voice(voice)

    @property
    def name(self) -> str:
        return "espeak-ng"

    @property
    def identity(self) -> str:
        return (
            f"{self._version}|s={self._speed}|p={self._pitch}|a={self._amplitude}"
            f"|default={self._default_voice}"
        )

    def _query(self, args: list[str]) -> str:
        try:
            proc = subprocess.run(
                [self._binary, *args], capture_output=True, timeout=10, check=True
            )
        except (subprocess.SubprocessError, OSError) as exc:
            raise TTSError(f"espeak-ng does not answer ({' '.join(args)}): {exc}") from exc
        return proc.stdout.decode("utf-8", "replace")

    def _installed_voices(self) -> frozenset[str]:
        # `espeak-ng --voices`: Pty Language Age/Gender VoiceName File Other Languages
        names: set[str] = set()
        for line in self._query(["--voices"]).splitlines()[1:]:
            cols = line.split()
            if len(cols) >= 5:
                names.update({cols[1].lower(), cols[3].lower(), cols[4].lower()})
                names.add(cols[4].rsplit("/", 1)[-1].lower())
        return frozenset(names)

    def resolve_voice(self, voice: str | None) -> str:
        """An alias (north/central/south) or an installed espeak-ng voice name."""
        if voice is None:
            return self._default_voice
        wanted = VOICE_ALIASES.get(voice.lower(), voice)
        if wanted.lower() not in self._voices:
            raise UnknownVoice(
                f"unknown voice {voice!r}: use north, central or south "
                f"(or an espeak-ng voice listed by `espeak-ng --voices`)"
            )
        return wanted

    def speed(self, rate: float) -> int:
        """espeak-ng's words per minute at ``rate`` times its normal speed (in its range)."""
        return min(450, max(80, round(self._speed * rate)))

    def synthesize(
        self,
        text: str,
        *,
        voice: str | None,
        out_wav: Path,
        rate: float = 1.0,
        pause_s: float = 0.0,
    ) -> None:
        if not text.strip():
            raise TTSError("nothing to say: the announcement text is empty")
        name = self.resolve_voice(voice)
        sentences = split_sentences(text) if pause_s > 0 else []
        if len(sentences) < 2:
            self._say(text, name, out_wav, rate)
            return
        # One process per sentence (a few ms each), the silence put between them here.
        with tempfile.TemporaryDirectory(prefix=".sentences-", dir=out_wav.parent) as tmp:
            parts = [Path(tmp) / f"{i}.wav" for i in range(len(sentences))]
            for sentence, part in zip(sentences, parts, strict=True):
                self._say(sentence, name, part, rate)
            join_wavs(parts, out_wav, pause_s)

    def _say(self, text: str, voice: str, out_wav: Path, rate: float) -> None:
        argv = [
            self._binary,
            "-v",
            voice,
            "-s",
            str(self.speed(rate)),
            "-p",
            str(self._pitch),
            "-a",
            str(self._amplitude),
            "-b",
            "1",  # the input is UTF-8
            "--stdin",  # the whole text at once, from stdin (not line by line, not argv)
            "-w",
            str(out_wav),
        ]
        _run(argv, text=text, timeout_s=self._timeout_s, what="espeak-ng")
        _check_wav(out_wav, "espeak-ng")


@dataclass(frozen=True, slots=True)
class PiperRun:
    """What one Piper worker said about its render (see ``audio/piper_worker.py``)."""

    sample_rate: int
    seconds: float
    load_s: float
    synth_s: float
    peak_rss_kib: int
    wall_s: float


#: The worker's exit status when piper-tts is not importable (an installation problem,
#: not the model's).
PIPER_MISSING = 3


def piper_importable(python: str = sys.executable) -> bool:
    """Whether piper-tts is installed for the hub's Python (found, not imported: importing
    it would load onnxruntime into the hub)."""
    if python == sys.executable:
        return importlib.util.find_spec("piper") is not None
    probe = "import importlib.util,sys; sys.exit(importlib.util.find_spec('piper') is None)"
    try:
        return subprocess.run([python, "-c", probe], timeout=30, check=False).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


class PiperMissing(TTSError):
    """piper-tts is not installed for the hub's Python."""


class Piper:
    """Piper neural TTS with a local ``.onnx`` voice model, one worker process per render.

    The worker (``python -m audio.piper_worker``) loads the model, speaks the text it reads
    from stdin and exits: the model's memory (a few hundred MB for a medium voice) never
    sits in the hub. ``voice`` in ``synthesize`` is ignored: one model is one voice.
    """

    def __init__(
        self,
        *,
        model: Path | str,
        config: Path | str | None = None,
        timeout_s: float = 180.0,
        python: str = sys.executable,
    ) -> None:
        self._model = Path(model)
        self._config = Path(config) if config is not None else Path(f"{self._model}.json")
        for path, what in ((self._model, "model"), (self._config, "model config")):
            if not path.is_file():
                raise TTSError(
                    f"piper {what} {path} does not exist: add it with `langso voice add`"
                )
        if timeout_s <= 0:
            raise TTSError(f"piper timeout {timeout_s} s: use more than 0")
        self._timeout_s = timeout_s
        self._python = python
        #: The last worker's report (the benchmark reads its peak memory).
        self.last_run: PiperRun | None = None

    @property
    def name(self) -> str:
        return "piper"

    @property
    def identity(self) -> str:
        m, c = self._model.stat(), self._config.stat()
        return f"piper|{self._model.name}|{m.st_size}|{m.st_mtime_ns}|{c.st_size}|{c.st_mtime_ns}"

    def synthesize(
        self,
        text: str,
        *,
        voice: str | None,
        out_wav: Path,
        rate: float = 1.0,
        pause_s: float = 0.0,
    ) -> None:
        if not text.strip():
            raise TTSError("nothing to say: the announcement text is empty")
        if not 0.1 <= rate <= 10 or not 0 <= pause_s <= 60:
            raise TTSError(f"piper: rate {rate} or pause {pause_s} s out of range")
        argv = [self._python, "-m", "audio.piper_worker"]
        argv += [str(self._model), str(self._config), str(out_wav), f"{rate:g}", f"{pause_s:g}"]
        env = dict(os.environ)
        # The worker imports this package wherever the hub found it (a checkout or a venv).
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(_PACKAGE_ROOT), env.get("PYTHONPATH", "")) if p
        )
        started = time.monotonic()
        try:
            proc = subprocess.run(
                argv,
                input=text.encode("utf-8"),
                capture_output=True,
                timeout=self._timeout_s,
                check=False,
                env=env,
            )
        except subprocess.TimeoutExpired as exc:
            raise TTSError(f"piper took longer than {self._timeout_s:g} s") from exc
        except OSError as exc:
            raise TTSError(f"piper could not start: {exc}") from exc
        if proc.returncode != 0:
            lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            detail = lines[-1][-300:] if lines else "no message"
            error = PiperMissing if proc.returncode == PIPER_MISSING else TTSError
            raise error(f"piper failed (exit {proc.returncode}): {detail}")
        _check_wav(out_wav, "piper")
        try:
            report = json.loads(proc.stdout.decode("utf-8").strip().splitlines()[-1])
            self.last_run = PiperRun(wall_s=time.monotonic() - started, **report)
        except (ValueError, IndexError, TypeError):
            self.last_run = None  # the audio is there; only the figures are missing


def make_engine(name: str, **opts: Any) -> TTSEngine:
    """``espeak-ng`` (or ``espeak``) or ``piper``, configured by keyword options."""
    if name in {"espeak-ng", "espeak"}:
        return EspeakNG(**opts)
    if name == "piper":
        return Piper(**opts)
    raise TTSError(f"unknown TTS engine {name!r}: use espeak-ng or piper")
