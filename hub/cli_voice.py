"""`langso voice add|list|remove`: the Piper voice models in ``<data_dir>/voices``, and their
lines in `langso doctor`.

No registry ships a Vietnamese Piper voice, so the admin gives a file or a URL. ``add``
checks the pair (``NAME.onnx`` and ``NAME.onnx.json`` beside it, or ``--json``), renders a
test sentence with it in a Piper worker, and only then copies it in; a URL is fetched with
a size cap and a timeout (the config from the same URL + ``.json``). A running hub sees a
new, replaced or removed voice at its next render: the voice engine lists the folder.
"""

from __future__ import annotations

import argparse
import getpass
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from audio.errors import TTSError
from audio.tts import piper_importable
from audio.voices import MAX_CONFIG_BYTES, PIPER_PREFIX, VoiceFolder, VoiceModel
from hub.errors import Invalid
from hub.settings import Settings

__all__ = ["add_voice_parser", "doctor_voices", "fetch", "voice_folder"]

#: A download gives up when the server is silent this long.
FETCH_TIMEOUT_S = 30.0
_CHUNK = 1 << 16

Report = Callable[..., None]


def voice_folder(settings: Settings) -> VoiceFolder:
    return VoiceFolder(settings.data_dir / "voices")


def fetch(url: str, dest: Path, *, max_bytes: int, timeout_s: float = FETCH_TIMEOUT_S) -> Path:
    """Download ``url`` to ``dest``, refusing more than ``max_bytes`` (announced or sent)."""
    if not url.startswith(("http://", "https://")):
        raise Invalid(f"{url}: only http:// and https:// addresses can be fetched")
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            announced = resp.headers.get("Content-Length")
            if announced and announced.isdigit() and int(announced) > max_bytes:
                raise Invalid(f"{url}: {int(announced)} bytes is over the {max_bytes} limit")
            got = 0
            with dest.open("wb") as out:
                while chunk := resp.read(_CHUNK):
                    got += len(chunk)
                    if got > max_bytes:
                        raise Invalid(f"{url}: more than the {max_bytes} bytes limit")
                    out.write(chunk)
    except urllib.error.HTTPError as exc:
        raise Invalid(f"{url}: the server answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise Invalid(f"{url}: cannot fetch it ({getattr(exc, 'reason', exc)})") from None
    return dest


def _audit(settings: Settings, action: str, target: str, detail: dict[str, Any]) -> None:
    """Into the hub's audit log, when the hub has a database here."""
    if not settings.db_path.exists():
        return
    from hub.clock import SystemClock
    from hub.store import Store

    store = Store(settings.db_path)
    try:
        with store.transaction() as conn:
            store.audit(
                conn,
                ts=SystemClock().now().timestamp(),
                actor=f"cli:{getpass.getuser()}",
                action=action,
                target=target,
                detail=detail,
            )
    finally:
        store.close()


def cmd_voice_add(args: argparse.Namespace, settings: Settings) -> int:
    folder = voice_folder(settings)
    max_bytes = int(args.max_mb * (1 << 20))
    with tempfile.TemporaryDirectory(prefix="voice-add-") as tmp:
        src, config = args.source, args.json
        config_path: Path | None
        if src.startswith(("http://", "https://")):
            name = args.name or src.rsplit("/", 1)[-1].split("?", 1)[0].removesuffix(".onnx")
            model = fetch(src, Path(tmp) / f"{name}.onnx", max_bytes=max_bytes)
            path, query = src.split("?", 1) if "?" in src else (src, "")
            config_url = config or f"{path}.json" + (f"?{query}" if query else "")
            config_path = fetch(
                config_url, Path(tmp) / f"{name}.onnx.json", max_bytes=MAX_CONFIG_BYTES
            )
        else:
            model, name = Path(src), args.name
            config_path = Path(config) if config else None
            if not model.is_file():
                raise Invalid(f"{model}: no such file (give NAME.onnx, its .onnx.json beside it)")
            if model.stat().st_size > max_bytes:
                raise Invalid(f"{model}: larger than --max-mb {args.max_mb:g}")
        try:
            found, engine = folder.install(
                model,
                config_path,
                name=name,
                force=args.force,
                timeout_s=settings.audio.piper_timeout_s,
            )
        except TTSError as exc:
            raise Invalid(f"voice not installed: {exc}") from None
    run = engine.last_run
    figures = (
        f"; test sentence {run.seconds:.1f} s of speech in {run.wall_s:.1f} s, "
        f"worker peak memory {run.peak_rss_kib / 1024:.0f} MiB"
        if run
        else ""
    )
    print(f"voice {found.id} installed ({found.language or '?'}, {found.sample_rate} Hz){figures}")
    _audit(settings, "voice.add", found.id, {"source": str(args.source), "force": args.force})
    return 0


def _status(folder: VoiceFolder, m: VoiceModel) -> str:
    failing = folder.failure(m)
    return f"failing: {failing}" if failing else "ok"


def cmd_voice_list(args: argparse.Namespace, settings: Settings) -> int:
    folder = voice_folder(settings)
    models, broken = folder.scan()
    default = settings.audio.voice
    for alias in ("north", "central", "south"):
        print(f"{alias:<40} espeak-ng  vi{'  (default)' if alias == default else ''}")
    for m in models:
        mark = "  (default)" if m.id == default else ""
        size = m.model.stat().st_size / (1 << 20)
        print(
            f"{m.id:<40} piper      {m.language or '?'}  {m.sample_rate} Hz  {size:.0f} MB  "
            f"{_status(folder, m)}{mark}"
        )
    for name, why in broken.items():
        print(f"{PIPER_PREFIX + name:<40} piper      broken: {why}")
    return 0


def cmd_voice_remove(args: argparse.Namespace, settings: Settings) -> int:
    try:
        voice_folder(settings).remove(args.name.removeprefix(PIPER_PREFIX))
    except TTSError as exc:
        raise Invalid(str(exc)) from None
    print(f"voice {PIPER_PREFIX}{args.name.removeprefix(PIPER_PREFIX)} removed")
    _audit(settings, "voice.remove", PIPER_PREFIX + args.name, {})
    return 0


def doctor_voices(settings: Settings, report: Report) -> None:
    """`langso doctor`'s lines: piper-tts, each installed voice, the default voice."""
    has_piper = piper_importable()
    folder = voice_folder(settings)
    models, broken = folder.scan()
    report(
        has_piper or not (models or broken),
        f"piper-tts importable: {has_piper}",
        "pip install 'langso-hub[voice]' in the hub's venv (else espeak-ng reads every text)",
    )
    if not models and not broken:
        print(f"[ok] no Piper voice in {folder.directory}: espeak-ng reads every announcement")
    for m in models:
        failing = folder.failure(m)
        report(
            failing is None,
            f"voice {m.id} ({m.language or '?'}, {m.sample_rate} Hz)"
            + (f": failing: {failing}" if failing else ""),
            f"langso voice add --force FILE (a working copy of {m.name}.onnx)",
        )
    for name, why in broken.items():
        report(
            False,
            f"voice {PIPER_PREFIX}{name}: {why}",
            f"langso voice remove {name}, or add it again",
        )
    default = settings.audio.voice
    if default.startswith(PIPER_PREFIX):
        installed = any(m.id == default for m in models)
        report(
            installed,
            f"default voice {default} installed: {installed}",
            "langso voice add FILE, or set audio.voice to north, central or south",
        )


def add_voice_parser(
    sub: Any,
    with_config: Callable[[argparse.ArgumentParser], argparse.ArgumentParser],
    settings_of: Callable[[argparse.Namespace], Settings],
) -> None:
    """``langso voice add|list|remove`` on the command line's subparsers."""
    voice = sub.add_parser("voice", help="Piper voice models (<data_dir>/voices)")
    cmds = voice.add_subparsers(dest="voice_cmd", required=True)

    def bind(cmd: Callable[[argparse.Namespace, Settings], int]) -> Callable[..., int]:
        return lambda args: cmd(args, settings_of(args))

    add = with_config(cmds.add_parser("add", help="check, test and install a voice model"))
    add.add_argument("source", help="NAME.onnx (its NAME.onnx.json beside it) or an http(s) URL")
    add.add_argument("--json", help="the model's config, when not SOURCE + .json")
    add.add_argument("--name", help="install under this name (default: the file's)")
    add.add_argument("--force", action="store_true", help="replace a voice of the same name")
    add.add_argument(
        "--max-mb", type=float, default=300, help="largest model accepted (MB, default 300)"
    )
    add.set_defaults(func=bind(cmd_voice_add))
    ls = with_config(cmds.add_parser("list", help="the voices one can choose"))
    ls.set_defaults(func=bind(cmd_voice_list))
    rm = with_config(cmds.add_parser("remove", help="remove a Piper voice"))
    rm.add_argument("name", help="NAME or piper:NAME")
    rm.set_defaults(func=bind(cmd_voice_remove))
