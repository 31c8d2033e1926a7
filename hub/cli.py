"""The `langso` command: run the hub, check a config, manage users, simulate, diagnose."""

from __future__ import annotations

import argparse
import gc
import getpass
import logging
import os
import shutil
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hub import __version__
from hub.cli_gpio import add_gpio_parser
from hub.cli_voice import add_voice_parser
from hub.errors import ConfigError, HubError
from hub.settings import Settings, load_settings


def _config_path(arg: str | None) -> Path | None:
    value = arg or os.environ.get("LANGSO_CONFIG")
    if value:
        return Path(value)
    default = Path("config/hub.toml")
    return default if default.exists() else None


#: The command line's own variables: beside the settings' overrides, never read as one.
CLI_ENV = frozenset({"LANGSO_CONFIG", "LANGSO_PASSWORD"})


def _settings(args: argparse.Namespace) -> Settings:
    env = {k: v for k, v in os.environ.items() if k not in CLI_ENV}
    return load_settings(_config_path(args.config), env=env)


def _settle_heap() -> None:
    """Tune the garbage collector for ingest, once everything is built.

    What exists now lives as long as the process: frozen, those objects (modules,
    models, routes: about 85,000) are no longer traversed by full collections. Ingest
    allocates about fifteen containers per message and frees nearly all of them by
    reference counting; with the default thresholds (700, 10, 10) the collector ran
    thousands of times a second under load. Measured with ``bench/ingest.py``: 47 µs
    of CPU per message before, 37 µs after.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 50)


def cmd_run(args: argparse.Namespace) -> int:
    import uvicorn

    from hub.app import build_hub
    from hub.cli_store import prepare_start
    from hub.events import AlertChanged
    from hub.server import create_app
    from hub.store.backup import record
    from hub.watchdog import serve

    settings = _settings(args)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Held until the process ends (the kernel drops it on kill -9 too): `langso restore`
    # and a second hub see it.
    start = prepare_start(settings)
    hub = build_hub(settings)
    if start.recovery is not None:
        # Once the new store is open: the technician sees it on the alerts page, on MQTT
        # (queued until the broker link is up) and by the notifier's rules.
        alert = record(hub.store, start.recovery, hub.clock.now())
        hub.events.publish(AlertChanged(alert))
    app = create_app(hub)
    _settle_heap()
    print(
        f"Làng Số Hub {__version__}: {settings.http.scheme}://{settings.http.host}:"
        f"{settings.http.port}/app/ "
        f"(site {settings.site}, broker {settings.mqtt.host}:{settings.mqtt.port})",
        flush=True,
    )
    config = uvicorn.Config(
        app,
        host=settings.http.host,
        port=settings.http.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        # Open live streams must not hold up the shutdown (amplifier off) for long.
        timeout_graceful_shutdown=5,
        # X-Forwarded-For and -Proto only from the proxies the settings name (uvicorn's
        # default believes 127.0.0.1, so anything on the Pi could claim any address).
        forwarded_allow_ips=settings.http.trusted_proxies,
        ssl_certfile=settings.http.cert_file,
        ssl_keyfile=settings.http.key_file,
    )

    def ready() -> None:
        # systemd (Type=notify): READY=1 once HTTP listens and the hub's threads run.
        if hub.watchdog is not None:
            hub.watchdog.ready(
                f"serving {settings.http.scheme}://{settings.http.host}:{settings.http.port}/"
            )

    if not serve(config, ready):
        return 3  # uvicorn's own code for a server that could not start
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from hub.cli_store import cmd_backup as backup

    out = Path(args.out) if args.out else None
    return backup(_settings(args), out=out, keep=args.keep, max_mib=args.max_mib)


def cmd_restore(args: argparse.Namespace) -> int:
    from hub.cli_store import cmd_restore as restore

    settings = _settings(args)
    return restore(settings, Path(args.file), hub_url=_hub_url(settings))


def cmd_gpio_off(args: argparse.Namespace) -> int:
    from hub.cli_gpio import gpio_off

    return gpio_off(_settings(args), hub_failed=args.hub_failed)


def cmd_check_config(args: argparse.Namespace) -> int:
    settings = load_settings(Path(args.file))
    print(f"{args.file}: ok (site {settings.site}, timezone {settings.timezone})")
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise ValueError("the two passwords differ")
    return first


def cmd_user_add(args: argparse.Namespace) -> int:
    from hub.clock import SystemClock
    from hub.services.users import Users
    from hub.store import Store

    settings = _settings(args)
    store = Store(settings.db_path)
    try:
        user = Users(store).add(
            args.name,
            args.role,
            _read_password(args),
            actor=f"cli:{getpass.getuser()}",
            now=SystemClock().now().timestamp(),
        )
    finally:
        store.close()
    print(f"user {user.username} added with role {user.role}")
    return 0


def cmd_user_exists(args: argparse.Namespace) -> int:
    from hub.store import Store, users

    store = Store(_settings(args).db_path)
    try:
        found = users.exists(store.connection(), args.name)
    finally:
        store.close()
    return 0 if found else 1


class HubUnreachable(HubError, ConnectionError):
    """Nothing answers at the hub's HTTP address."""


class Refused(HubError, RuntimeError):
    """The hub answered with an error (a 4xx or 5xx status) and its reason."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


def _hub_url(settings: Settings) -> str:
    """Where the running hub listens, as this machine reaches it (a wildcard bind too)."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(
        settings.http.host, settings.http.host
    )
    return f"http://{f'[{host}]' if ':' in host else host}:{settings.http.port}"


def _call(
    url: str,
    path: str,
    *,
    json_body: object = None,
    form: dict[str, str] | None = None,
    token: str | None = None,
) -> Any:
    """One request to the running hub's API: its JSON answer, or Refused with its reason."""
    import json
    import urllib.error
    import urllib.parse
    import urllib.request

    headers = {"Accept": "application/json"}
    data = None
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif json_body is not None:
        data = json.dumps(json_body, ensure_ascii=False).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url + path, data=data, headers=headers)
    try:
        # Long enough for the hub to render the announcement's audio before it answers.
        with urllib.request.urlopen(request, timeout=180) as response:
            return json.load(response)
    except urllib.error.HTTPError as e:
        try:
            detail = json.loads(e.read() or b"{}").get("detail") or e.reason
        except ValueError:
            detail = e.reason
        raise Refused(e.code, str(detail)) from None
    except TimeoutError as e:
        raise HubUnreachable(f"the hub at {url} did not answer within 180 s") from e
    except (urllib.error.URLError, ConnectionError) as e:
        raise HubUnreachable(f"the hub is not running at {url} (start it with `langso run`)") from e


def _password() -> str:
    """``$LANGSO_PASSWORD``, else the first line of stdin (a pipe), else a prompt."""
    if "LANGSO_PASSWORD" in os.environ:
        return os.environ["LANGSO_PASSWORD"]
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    return getpass.getpass("Password: ")


def cmd_announce(args: argparse.Namespace) -> int:
    """Through the running hub's API, signed in as a head or admin: the hub validates,
    renders and schedules it as it does what the compose page sends."""
    from datetime import datetime

    settings = _settings(args)
    category = args.category or ("emergency" if args.priority == "emergency" else None)
    body = {
        "title": args.title or args.text[:60],
        "text": args.text,
        # Left out: the hub reads an invitation as a meeting (its answer's ``guess`` says).
        **({"category": category} if category else {}),
        "priority": args.priority,
        "zones": args.zone or ["all"],
        # No offset: the hub reads it as the village's local time.
        "start_at": datetime.fromisoformat(args.at).isoformat() if args.at else None,
        "rrule": args.rrule,
        "repeat": args.repeat,
        "voice": args.voice,
        "meeting_at": (
            datetime.fromisoformat(args.meeting_at).isoformat() if args.meeting_at else None
        ),
        "meeting_place": args.meeting_place,
    }
    url = _hub_url(settings)
    try:
        login = {"username": args.user, "password": _password()}
        token = _call(url, "/api/auth/token", form=login)["access_token"]
        a = _call(url, "/api/announcements", json_body=body, token=token)
    except Refused as e:
        print(f"langso: {e}", file=sys.stderr)
        return 2 if e.status < 500 else 1
    print(
        f"{a['id']} {a['status']} next run {_local(a['next_run'], settings)} "
        f"({a['duration_s']:.1f} s of audio)"
    )
    return 0


def _local(iso: str | None, settings: Settings) -> str:
    from datetime import datetime

    if not iso:
        return "-"
    return (
        datetime.fromisoformat(iso.replace("Z", "+00:00"))
        .astimezone(settings.tz)
        .strftime("%Y-%m-%d %H:%M:%S")
    )


def cmd_schedule(args: argparse.Namespace) -> int:
    """What the residents' page shows as coming next, from the running hub."""
    settings = _settings(args)
    rows = _call(_hub_url(settings), f"/api/announcements?upcoming=true&limit={args.limit}")
    if not rows:
        print("nothing scheduled")
    for a in rows:
        print(
            f"{_local(a['next_run'], settings)}  {a['priority']:<9} {a['id']}  "
            f"{a['title']}" + (f"  [{a['rrule']}]" if a["rrule"] else "")
        )
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from devices.simulator import run_simulator

    settings = _settings(args)
    logging.basicConfig(level=settings.log_level)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(
        f"simulating {args.aps} APs and {args.sensors} sensors on "
        f"{settings.mqtt.host}:{settings.mqtt.port} (site {settings.site})",
        flush=True,
    )
    run_simulator(
        settings.mqtt.host,
        settings.mqtt.port,
        settings.site,
        args.aps,
        args.sensors,
        args.interval,
        args.seed,
        stop,
        username=settings.mqtt.username,
        password=settings.mqtt.password,
    )
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check the installation; print one line per check and what to do when it fails."""
    problems = 0

    def report(ok: bool, what: str, fix: str = "") -> None:
        nonlocal problems
        problems += 0 if ok else 1
        print(f"[{'ok' if ok else 'FAIL'}] {what}" + ("" if ok else f"\n       fix: {fix}"))

    try:
        settings = _settings(args)
        report(True, f"configuration {_config_path(args.config) or '(defaults)'}")
    except ConfigError as e:
        report(False, f"configuration: {e}", "correct the key named above")
        return 2
    for tool, pkg in (
        ("mosquitto", "mosquitto"),
        ("mosquitto_pub", "mosquitto-clients"),
        ("espeak-ng", "espeak-ng"),
        ("ffmpeg", "ffmpeg"),
        ("aplay", "alsa-utils"),
    ):
        found = shutil.which(tool) or Path(f"/usr/sbin/{tool}").exists()
        report(bool(found), f"{tool} installed", f"sudo apt-get install {pkg} (or: make run)")
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        probe = settings.data_dir / ".doctor"
        probe.write_text("ok")
        probe.unlink()
        report(True, f"data directory {settings.data_dir} writable")
    except OSError as e:
        report(False, f"data directory {settings.data_dir}: {e}", "fix its permissions")
    try:
        with socket.create_connection((settings.mqtt.host, settings.mqtt.port), timeout=2):
            report(True, f"broker answers at {settings.mqtt.host}:{settings.mqtt.port}")
    except OSError as e:
        report(
            False,
            f"broker at {settings.mqtt.host}:{settings.mqtt.port}: {e}",
            "start mosquitto (sudo systemctl start mosquitto) or fix mqtt.host/port",
        )
    from hub.clock import clock_synced

    synced = clock_synced()
    report(
        synced is not False,
        f"system clock synchronised: {synced}",
        "enable NTP (sudo timedatectl set-ntp true); schedules wait for it",
    )
    if settings.db_path.exists():
        from hub.services.users import Users
        from hub.store import Store

        store = Store(settings.db_path)
        try:
            admins = Users(store).count("admin")
        finally:
            store.close()
        report(admins > 0, f"{admins} admin account(s)", "langso user add NAME --role admin")
    from hub.cli_voice import doctor_voices

    doctor_voices(settings, report)
    print("all good" if not problems else f"{problems} problem(s)")
    return 0 if not problems else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="langso", description="Làng Số Hub")
    p.add_argument("--version", action="version", version=f"langso {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def with_config(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument(
            "--config", help="TOML settings file (default: $LANGSO_CONFIG or config/hub.toml)"
        )
        return sp

    with_config(sub.add_parser("run", help="run the hub in the foreground")).set_defaults(
        func=cmd_run
    )
    cc = sub.add_parser("check-config", help="validate a settings file")
    cc.add_argument("file")
    cc.set_defaults(func=cmd_check_config)

    user = sub.add_parser("user", help="manage users").add_subparsers(
        dest="user_cmd", required=True
    )
    add = with_config(user.add_parser("add", help="create a user"))
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=["admin", "head", "technician"])
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of stdin",
    )
    add.set_defaults(func=cmd_user_add)
    ex = with_config(user.add_parser("exists", help="exit 0 if the user exists"))
    ex.add_argument("name")
    ex.set_defaults(func=cmd_user_exists)

    sim = with_config(sub.add_parser("simulate", help="publish a simulated village"))
    sim.add_argument("--aps", type=int, default=20)
    sim.add_argument("--sensors", type=int, default=5)
    sim.add_argument("--interval", type=float, default=10.0, help="seconds between reports")
    sim.add_argument("--seed", type=int, default=1)
    sim.set_defaults(func=cmd_simulate)

    ann = with_config(sub.add_parser("announce", help="schedule an announcement"))
    ann.add_argument("text", help="what the loudspeakers say (Vietnamese)")
    ann.add_argument(
        "--user",
        required=True,
        help="a head or admin account; its password comes from $LANGSO_PASSWORD, else the "
        "first line of stdin, else a prompt",
    )
    ann.add_argument("--at", help="when, village time: 2026-12-01 19:30 (default: now)")
    ann.add_argument("--rrule", help="recurrence, e.g. FREQ=DAILY or FREQ=WEEKLY;BYDAY=MO")
    ann.add_argument("--priority", default="normal", choices=["normal", "high", "emergency"])
    ann.add_argument("--zone", action="append", help="a zone (repeat for more; default all)")
    ann.add_argument("--title")
    ann.add_argument("--category", choices=["notice", "news", "meeting", "emergency"])
    ann.add_argument("--meeting-at", help="a meeting's own time, village time: 2026-12-10 19:30")
    ann.add_argument("--meeting-place", help="where the meeting is")
    ann.add_argument("--repeat", type=int, default=1, help="times said per broadcast (1-5)")
    ann.add_argument("--voice", help="north, central, south or piper:NAME (langso voice list)")
    ann.set_defaults(func=cmd_announce)
    sched = with_config(sub.add_parser("schedule", help="list what will play next"))
    sched.add_argument("--limit", type=int, default=20)
    sched.set_defaults(func=cmd_schedule)

    with_config(sub.add_parser("doctor", help="check the installation")).set_defaults(
        func=cmd_doctor
    )
    bk = with_config(
        sub.add_parser("backup", help="copy the database (online, verified, gzip-compressed)")
    )
    bk.add_argument("--out", help="folder for the copies (default: <data_dir>/backups)")
    bk.add_argument("--keep", type=int, default=15, help="newest copies kept (default 15)")
    bk.add_argument(
        "--max-mib", type=int, default=1024, help="size of all copies kept (default 1024)"
    )
    bk.set_defaults(func=cmd_backup)
    rs = with_config(
        sub.add_parser("restore", help="put a backup in place of the database (hub stopped)")
    )
    rs.add_argument("file", help="a backup: hub-YYYYmmdd-HHMMSS.db.gz or a plain .db")
    rs.set_defaults(func=cmd_restore)
    add_gpio_parser(sub, with_config, cmd_gpio_off)
    add_voice_parser(sub, with_config, _settings)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        rc: int = args.func(args)
        return rc
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        return 2
    except (HubError, ValueError) as e:
        print(f"langso: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
