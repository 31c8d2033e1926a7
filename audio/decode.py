"""Uploads: a phone's or a browser's recording, checked and decoded to mono WAV for the renderer.

``POST /api/audio`` hands the uploaded file here (from a worker thread). Checks run
cheapest first: the size (nothing is read), then ffprobe (is it audio, in a container
we accept, how long does it claim to be), then ffmpeg decodes under a time limit to
mono 16-bit WAV; the decoded length is what counts, since a header can lie and a
MediaRecorder WebM carries no duration at all.

ffmpeg would follow an HLS playlist or a concat script to other files and hosts; only
the demuxers of real recordings and the ``file`` protocol are allowed.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audio.errors import AudioError, AudioTooLarge, InvalidAudio, UnsupportedAudio

__all__ = ["MAX_BYTES", "MAX_SECONDS", "AudioInfo", "decode_upload", "probe", "wav_duration"]

MAX_BYTES = 25 * 1024 * 1024
MAX_SECONDS = 900.0

# What phones and browsers record: MP3, M4A/AAC (iPhone, Android), AMR-NB (older
# Android voice recorders, 3GP), Ogg/Opus (Android, Firefox), WebM/Opus (Chrome's
# MediaRecorder), WAV; FLAC and ADTS AAC for good measure.
_DEMUXERS = "wav,w64,mp3,mov,mp4,m4a,3gp,3g2,mj2,amr,amrnb,amrwb,ogg,matroska,webm,aac,flac,caf"
_SAFE_INPUT = ["-format_whitelist", _DEMUXERS, "-protocol_whitelist", "file"]

# Below this peak a recording is silence or a muted microphone: normalising it to
# −16 LUFS would only play hiss on the loudspeakers.
_SILENT_DBFS = -60.0


@dataclass(frozen=True, slots=True)
class AudioInfo:
    """What ffprobe (or the decoded WAV) says about a recording.

    ``duration_s`` is None from ``probe`` when the container does not tell (a
    MediaRecorder WebM); ``decode_upload`` always fills it from the decoded audio.
    """

    duration_s: float | None
    codec: str
    container: str
    sample_rate: int | None = None
    channels: int | None = None


def _file_url(path: Path) -> str:
    # "file:" stops ffmpeg reading a name like "concat:a|b" or "-i" as a protocol or option.
    return "file:" + str(path.resolve())


def _float(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) and f >= 0 else None


def probe(path: Path, *, timeout_s: float = 15.0) -> AudioInfo:
    """The first audio stream of ``path``; UnsupportedAudio if there is none."""
    argv = [
        "ffprobe",
        "-v",
        "error",
        *_SAFE_INPUT,
        "-print_format",
        "json",
        "-show_format",
        "-show_streams",
        _file_url(path),
    ]
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise UnsupportedAudio(f"{path.name}: ffprobe gave up after {timeout_s:g} s") from exc
    except OSError as exc:  # ffprobe missing: the installation is broken, not the file
        raise AudioError(f"ffprobe cannot run ({exc}): apt install ffmpeg") from exc
    if proc.returncode != 0:
        raise UnsupportedAudio(
            f"{path.name} is not a recording this hub can read "
            "(send MP3, M4A, AMR, OGG, WebM or WAV)"
        )
    try:
        data = json.loads(proc.stdout or b"{}")
    except json.JSONDecodeError as exc:
        raise UnsupportedAudio(f"{path.name}: ffprobe answered garbage") from exc
    streams = [s for s in data.get("streams", []) if s.get("codec_type") == "audio"]
    if not streams:
        raise UnsupportedAudio(f"{path.name} holds no sound (no audio stream)")
    stream, fmt = streams[0], data.get("format", {})
    rate = _float(stream.get("sample_rate"))
    return AudioInfo(
        duration_s=_float(stream.get("duration")) or _float(fmt.get("duration")),
        codec=str(stream.get("codec_name", "unknown")),
        container=str(fmt.get("format_name", "unknown")),
        sample_rate=int(rate) if rate else None,
        channels=int(stream["channels"]) if stream.get("channels") else None,
    )


def wav_duration(path: Path) -> float:
    """Seconds of audio in a PCM WAV file (from its header)."""
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / float(w.getframerate())


def decode_upload(
    src: Path,
    dst_wav: Path,
    *,
    max_bytes: int = MAX_BYTES,
    max_seconds: float = MAX_SECONDS,
    timeout_s: float = 60.0,
    sample_rate: int = 22050,
) -> AudioInfo:
    """Check an uploaded recording and decode it to mono 16-bit WAV at ``sample_rate``.

    Raises AudioTooLarge (413), UnsupportedAudio (415) or InvalidAudio (422: empty,
    too long, undecodable, silent). ``dst_wav`` appears only when everything passed.
    """
    try:
        size = src.stat().st_size
    except FileNotFoundError as exc:
        raise InvalidAudio(f"{src.name} is missing: upload it again") from exc
    if size == 0:
        raise InvalidAudio(f"{src.name} is empty: record again")
    if size > max_bytes:
        raise AudioTooLarge(
            f"{src.name} is {size / 1048576:.1f} MiB; the limit is {max_bytes / 1048576:.1f} MiB"
        )
    info = probe(src, timeout_s=min(timeout_s, 15.0))
    if info.duration_s is not None and info.duration_s > max_seconds:
        raise InvalidAudio(_too_long(info.duration_s, max_seconds))
    dst_wav.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".decode-", suffix=".wav", dir=dst_wav.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        max_volume = _ffmpeg_decode(src, tmp, max_seconds, timeout_s, sample_rate)
        duration = wav_duration(tmp)
        if duration > max_seconds:
            raise InvalidAudio(_too_long(duration, max_seconds))
        if duration < 0.1:
            raise InvalidAudio(f"{src.name} holds no audio (0 s after decoding): record again")
        if max_volume is None or max_volume < _SILENT_DBFS:
            raise InvalidAudio(f"{src.name} is silent: check the microphone and record again")
        os.replace(tmp, dst_wav)
    finally:
        tmp.unlink(missing_ok=True)
    return AudioInfo(
        duration_s=duration,
        codec=info.codec,
        container=info.container,
        sample_rate=sample_rate,
        channels=1,
    )


def _too_long(duration: float, limit: float) -> str:
    return f"the recording lasts {duration:.0f} s; the limit is {limit:.0f} s: cut it or split it"


_MAX_VOLUME = re.compile(rb"max_volume:\s*(-?[\d.]+|-inf) dB")


def _ffmpeg_decode(
    src: Path, dst: Path, max_seconds: float, timeout_s: float, sample_rate: int
) -> float | None:
    """Decode the first audio stream; returns its peak in dBFS (None: digital silence)."""
    argv = [
        "ffmpeg",
        "-nostdin",
        "-hide_banner",
        "-nostats",
        "-loglevel",
        "info",  # volumedetect reports at info level; errors are kept too
        *_SAFE_INPUT,
        "-i",
        _file_url(src),
        "-map",
        "0:a:0",
        # One second past the limit is enough to tell "too long" without decoding an hour.
        "-t",
        f"{max_seconds + 1:g}",
        "-af",
        "volumedetect",
        "-ac",
        "1",
        "-ar",
        str(sample_rate),
        "-c:a",
        "pcm_s16le",
        "-f",
        "wav",
        "-y",
        _file_url(dst),
    ]
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise InvalidAudio(
            f"{src.name}: decoding took longer than {timeout_s:g} s; the file may be damaged"
        ) from exc
    except OSError as exc:
        raise AudioError(f"ffmpeg cannot run ({exc}): apt install ffmpeg") from exc
    if proc.returncode != 0:
        lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise InvalidAudio(f"{src.name} cannot be decoded: {lines[-1] if lines else 'no detail'}")
    found = _MAX_VOLUME.search(proc.stderr)
    if found is None or found.group(1) == b"-inf":
        return None
    return float(found.group(1))
