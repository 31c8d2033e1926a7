"""Piper voices: `langso voice add|list|remove`, a Piper render through the real render path
(chimes, loudness measured by ffmpeg's ebur128), and espeak-ng standing in, said, when the
model is missing, corrupt, crashes Piper or is too slow."""

from __future__ import annotations

import http.server
import json
import logging
import os
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from audio.errors import UnknownVoice
from audio.render import RenderSpec, measure_loudness, render
from audio.tts import EspeakNG
from audio.voices import VoiceEngine, VoiceFolder
from hub.cli import main
from tests.integration.voice_fixture import NAME, VOICE, joe_pair, voice_folder

TEXT = "Hello everyone. The village meeting starts at half past seven tonight."


@pytest.fixture(scope="module")
def espeak() -> EspeakNG:
    if shutil.which("espeak-ng") is None or shutil.which("ffmpeg") is None:
        pytest.skip("espeak-ng and ffmpeg are needed")
    return EspeakNG()


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(config file, voices folder): the stand-in voice added by `langso voice add`."""
    model, _ = joe_pair()
    root = tmp_path_factory.mktemp("voice-cli")
    config = root / "hub.toml"
    config.write_text(f'data_dir = "{root / "var"}"\n', encoding="utf-8")
    assert main(["voice", "add", str(model), "--config", str(config)]) == 0
    return config, root / "var" / "voices"


def test_voice_add_checks_renders_and_installs(
    installed: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config, voices = installed
    assert sorted(p.name for p in voices.iterdir()) == [f"{NAME}.onnx", f"{NAME}.onnx.json"]
    assert main(["voice", "list", "--config", str(config)]) == 0
    listed = capsys.readouterr().out
    assert f"{VOICE} " in listed and "en_US  22050 Hz" in listed and "north" in listed
    # The same name again is refused without --force (and nothing is rendered for it).
    model, _ = joe_pair()
    assert main(["voice", "add", str(model), "--config", str(config)]) == 1
    assert "already installed: add --force" in capsys.readouterr().err


def test_piper_through_the_render_path(
    installed: tuple[Path, Path], espeak: EspeakNG, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = VoiceEngine(espeak, VoiceFolder(installed[1]), default_voice="north")
    caplog.set_level(logging.WARNING)
    r = render(RenderSpec(text=TEXT, voice=VOICE), engine, tmp_path / "cache")
    lufs, peak = measure_loudness(r.wav_path)
    assert abs(lufs + 16.0) <= 0.5 and peak <= -1.0 + 0.1
    assert r.duration_s > 4.0  # chimes, pauses and about 4 s of words
    assert engine.fallback_count == 0 and not caplog.records
    # The model ran in its own process: the hub never loads onnxruntime.
    assert "onnxruntime" not in sys.modules and "piper" not in sys.modules
    # Another model file under the same name is another voice: the cache follows it.
    before = engine.identity
    os.utime(installed[1] / f"{NAME}.onnx", ns=(1, 1))
    assert engine.identity != before


def _fallback_case(case: str, root: Path) -> tuple[VoiceFolder, float]:
    model, config = joe_pair()
    if case == "missing":
        folder = voice_folder(root)
        (root / f"{NAME}.onnx").unlink()
        return VoiceFolder(folder), 60.0
    if case == "corrupt":  # a download cut short
        return VoiceFolder(voice_folder(root, model=model.read_bytes()[: 256 << 10])), 60.0
    if case == "crash":  # a config Piper cannot use (it passes the installer's checks)
        data = json.loads(config.read_text(encoding="utf-8")) | {"phoneme_type": "klingon"}
        return VoiceFolder(voice_folder(root, config=json.dumps(data))), 60.0
    assert case == "timeout"
    return VoiceFolder(voice_folder(root)), 0.01


@pytest.mark.parametrize("case", ["missing", "corrupt", "crash", "timeout"])
def test_espeak_reads_when_piper_cannot_and_says_so(
    case: str, espeak: EspeakNG, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder, timeout_s = _fallback_case(case, tmp_path / "voices")
    engine = VoiceEngine(espeak, folder, default_voice="north", timeout_s=timeout_s)
    key_before = engine.identity
    caplog.set_level(logging.WARNING, logger="audio.voices")
    r = render(RenderSpec(text=TEXT, voice=VOICE), engine, tmp_path / "cache")
    # Audio all the same, at the level of any broadcast...
    assert r.duration_s > 3.0 and abs(measure_loudness(r.wav_path)[0] + 16.0) <= 0.5
    # ...and the stand-in is said: the log, the engine's record, the voice's status.
    [warning] = [rec.getMessage() for rec in caplog.records]
    assert f"voice {VOICE} cannot speak" in warning and "espeak-ng" in warning
    assert engine.fallback_count == 1
    last = engine.last_fallback()
    assert last is not None and last.voice == VOICE
    status = next(v["status"] for v in engine.voices() if v["id"] == VOICE)
    if case == "missing":
        assert "is missing" in last.reason and status.startswith("broken:")
        return
    assert status.startswith("failing:"), status
    assert {"corrupt": "piper failed", "crash": "klingon", "timeout": "longer than"}[
        case
    ] in last.reason
    # Marked on disk: a restarted hub keys its renders apart from the working model's and
    # lets espeak-ng read at once, until the voice is installed again.
    assert (folder.directory / f"{NAME}.failed").exists()
    again = VoiceEngine(espeak, folder, default_voice="north", timeout_s=60)
    assert again.identity != key_before
    assert (again.failure(folder.scan()[0][0]) or "") in last.reason


def test_unknown_removed_and_default_voices(
    espeak: EspeakNG, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "hub.toml"
    config.write_text(f'data_dir = "{tmp_path / "var"}"\n', encoding="utf-8")
    folder = VoiceFolder(voice_folder(tmp_path / "var" / "voices"))
    engine = VoiceEngine(espeak, folder, default_voice="piper:not-here")
    out = tmp_path / "x.wav"
    # A name never installed here is the request's mistake (422)...
    with pytest.raises(UnknownVoice, match=f"installed Piper voices: {VOICE}") as info:
        engine.synthesize(TEXT, voice="piper:typo", out_wav=out)
    assert info.value.status == 422
    # ...but the default voice missing never leaves announcements silent.
    engine.synthesize(TEXT, voice=None, out_wav=out)
    assert out.stat().st_size > 10_000 and engine.fallback_count == 1
    # A removed voice: announcements that named it are read by espeak-ng.
    assert main(["voice", "remove", NAME, "--config", str(config)]) == 0
    assert not (folder.directory / f"{NAME}.onnx").exists()
    engine.synthesize(TEXT, voice=VOICE, out_wav=out)
    last = engine.last_fallback()
    assert last is not None and "removed" in last.reason
    assert main(["voice", "remove", NAME, "--config", str(config)]) == 1
    assert "no voice" in capsys.readouterr().err


@pytest.fixture
def web_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on 127.0.0.1 serving a folder (the admin's download link)."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: object, **kw: object) -> None:
            super().__init__(*a, directory=str(root), **kw)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_voice_add_from_a_url(
    web_root: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, root = web_root
    voice_folder(root)
    config = tmp_path / "hub.toml"
    config.write_text(f'data_dir = "{tmp_path / "var"}"\n', encoding="utf-8")
    add = ["voice", "add", "--config", str(config)]
    # Over the size cap: refused while downloading, nothing installed.
    assert main([*add, f"{url}/{NAME}.onnx", "--max-mb", "1"]) == 1
    assert "limit" in capsys.readouterr().err
    assert main([*add, f"{url}/nothing.onnx"]) == 1
    assert "answered 404" in capsys.readouterr().err
    assert not (tmp_path / "var" / "voices").exists()
    assert main([*add, f"{url}/{NAME}.onnx", "--name", "joe"]) == 0
    assert "voice piper:joe installed (en_US, 22050 Hz)" in capsys.readouterr().out
    assert [m.id for m in VoiceFolder(tmp_path / "var" / "voices").scan()[0]] == ["piper:joe"]


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("no-config", ".onnx.json) "),
        ("not-json", "is not JSON"),
        ("no-rate", "audio.sample_rate is missing"),
        ("tiny", "is not a Piper model"),
        ("does-not-load", "piper failed"),
    ],
)
def test_voice_add_refuses_bad_files(
    case: str, reason: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, config = joe_pair()
    src = tmp_path / "src"
    if case == "no-config":
        voice_folder(src)
        (src / f"{NAME}.onnx.json").unlink()
    elif case == "not-json":
        voice_folder(src, config="{ sample_rate: 22050")
    elif case == "no-rate":
        data = json.loads(config.read_text(encoding="utf-8"))
        del data["audio"]["sample_rate"]
        voice_folder(src, config=json.dumps(data))
    elif case == "tiny":
        voice_folder(src, model=b"\x08\x07")
    else:
        voice_folder(src, model=model.read_bytes()[: 256 << 10])
    hub_toml = tmp_path / "hub.toml"
    hub_toml.write_text(f'data_dir = "{tmp_path / "var"}"\n', encoding="utf-8")
    assert main(["voice", "add", str(src / f"{NAME}.onnx"), "--config", str(hub_toml)]) == 1
    err = capsys.readouterr().err
    assert reason in err, err
    assert not (tmp_path / "var" / "voices" / f"{NAME}.onnx").exists()


def test_doctor_lists_the_voices(
    installed: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    main(["doctor", "--config", str(installed[0])])
    out = capsys.readouterr().out
    assert "[ok] piper-tts importable: True" in out
    assert f"[ok] voice {VOICE} (en_US, 22050 Hz)" in out
