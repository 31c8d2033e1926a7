"""deploy/install-pi.sh for real on this Debian machine (as root): everything but starting
units, then `systemd-analyze verify` on the installed units, the installed hub started from
its installed paths as the `langso` user with the environment its unit gives it, a second
install that keeps what it must, and deploy/uninstall-pi.sh --purge that leaves the machine
as it was found.

The installer runs with --no-start (systemd is not PID 1 in a container, and a test must
not start services) and --wheelhouse (no internet: the wheels are made once, see
``wheelhouse``). The broker account is tried on a Mosquitto started from the installed
langso.conf and accounts file, on a free loopback port instead of 1883 (the only line
changed), as Debian starts it: as root, dropping to the mosquitto user.
"""

from __future__ import annotations

import base64
import grp
import hashlib
import importlib.metadata as md
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.broker import free_port, wait_port
from tests.hubtest import wait_for

pytestmark = [pytest.mark.broker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PREFIX = Path("/opt/langso")
ETC = Path("/etc/langso")
DATA = Path("/var/lib/langso")
UNIT_DIR = Path("/etc/systemd/system")
MOSQ_CONF = Path("/etc/mosquitto/conf.d/langso.conf")
DYNSEC = Path("/var/lib/mosquitto/dynamic-security.json")
CTRL_CONF = Path("/root/.config/mosquitto_ctrl")
# Everything the installer creates. None may exist before the test (a real installation
# is never touched) and none after the uninstall.
OURS = (PREFIX, ETC, DATA, MOSQ_CONF, DYNSEC, CTRL_CONF, Path("/usr/local/sbin/langso-add-device"))
# The files whose whole content must be as found afterwards (the user, its group, its
# membership of audio).
ACCOUNTS = ("/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow")
# A systemd service's environment before its Environment= lines (systemd.exec(5)).
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def machine_state() -> dict[str, object]:
    """What an install changes outside its own folders: accounts, units and their links."""
    return {
        "ours": sorted(str(p) for p in OURS if p.exists() or p.is_symlink()),
        "units": sorted(str(p) for p in UNIT_DIR.rglob("langso-*")),
        "accounts": {f: hashlib.sha256(Path(f).read_bytes()).hexdigest() for f in ACCOUNTS},
        "conf.d": sorted(os.listdir(MOSQ_CONF.parent)),
    }


def _runtime_pins() -> list[str]:
    """name==version of langso-hub's runtime requirements in the venv the tests run in,
    recursively, so the installed hub gets the versions the tests ran with."""
    from packaging.requirements import Requirement

    pins: dict[str, str] = {}
    todo = list(md.distribution("langso-hub").requires or [])
    while todo:
        req = Requirement(todo.pop())
        if req.marker and not req.marker.evaluate({"extra": ""}):
            continue
        dist = md.distribution(req.name)
        name = dist.metadata["Name"]
        if name not in pins:
            pins[name] = dist.version
            todo.extend(dist.requires or [])
    return sorted(f"{n}=={v}" for n, v in pins.items())


def wheelhouse() -> Path:
    """The wheels of the hub's dependencies and of its build backend, made once with pip
    (the one step that needs an index, like the venv itself) in this venv's folder, and
    reused offline by every later run. Made again when the pins change."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    backend = [*project["build-system"]["requires"], "wheel"]
    # The build backend's own requirement wins over a runtime pin of it (gpiozero's
    # colorzero needs some setuptools; the build needs a newer one).
    names = {re.split(r"[<>=!~ ;\[]", b, maxsplit=1)[0].lower() for b in backend}
    wanted = [p for p in _runtime_pins() if p.split("==")[0].lower() not in names] + backend
    key = hashlib.sha256("\n".join(wanted).encode()).hexdigest()[:16]
    house = Path(sys.prefix) / "wheelhouse"
    stamp = house / "pins.sha256"
    if stamp.exists() and stamp.read_text() == key:
        return house
    shutil.rmtree(house, ignore_errors=True)
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(house), *wanted],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, f"could not make the wheelhouse (needs an index once):\n{r.stderr}"
    stamp.write_text(key)
    return house


@dataclass
class Installed:
    output: str
    admin_password: str
    before: dict[str, object]


def run_script(name: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(DEPLOY / name), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def uninstall() -> subprocess.CompletedProcess[str]:
    return run_script("uninstall-pi.sh", "--purge", timeout=60)


@pytest.fixture(scope="module")
def installed() -> Iterator[Installed]:
    if os.geteuid() != 0:
        pytest.skip("the installer runs as root (it creates a user, units, /opt/langso)")
    for tool in ("systemctl", "systemd-analyze", "useradd", "setpriv", "mosquitto"):
        if not (shutil.which(tool) or Path("/usr/sbin", tool).exists()):
            pytest.skip(f"{tool} is not installed")
    here = [str(p) for p in OURS if p.exists()]
    try:
        pwd.getpwnam("langso")
        here.append("user langso")
    except KeyError:
        pass
    here += [str(p) for p in UNIT_DIR.glob("langso-*")]
    if here:
        pytest.skip(f"Làng Số is installed here ({', '.join(here)}): not touching it")
    house = wheelhouse()
    before = machine_state()
    try:
        r = run_script("install-pi.sh", "--no-start", "--https", "--wheelhouse", str(house))
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        m = re.search(r"admin password \(shown once, write it down\): (\S+)", r.stdout)
        assert m, r.stdout
        yield Installed(r.stdout, m.group(1), before)
    finally:
        # Whatever happened above: the machine is left as found.
        if any(p.exists() for p in OURS) or list(UNIT_DIR.rglob("langso-*")):
            uninstall()


def unit_lines(path: Path) -> list[tuple[str, str]]:
    """(key, value) of a unit file, in order (keys repeat: Exec*, DeviceAllow...)."""
    out = []
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            out.append((key.strip(), value.strip()))
    return out


def installed_units() -> list[Path]:
    return sorted([*UNIT_DIR.glob("langso-*.service"), *UNIT_DIR.glob("langso-*.timer")])


def test_installed_where_the_units_and_readme_say(installed: Installed) -> None:
    shipped = sorted(
        [*(DEPLOY / "systemd").glob("langso-*.service"), *(DEPLOY / "systemd").glob("*.timer")]
    )
    # Every unit shipped, whatever they are, byte for byte; enabled when it has [Install].
    assert [p.name for p in installed_units()] == [p.name for p in shipped]
    for src in shipped:
        dest = UNIT_DIR / src.name
        assert dest.read_bytes() == src.read_bytes()
        if "[Install]" in src.read_text():
            wanted_by = dict(unit_lines(src))["WantedBy"]
            link = UNIT_DIR / f"{wanted_by}.wants" / src.name
            assert link.is_symlink() and link.resolve() == dest, link
    # The venv is the distribution's Python (langso cannot run one from /root).
    cfg = (PREFIX / "venv" / "pyvenv.cfg").read_text()
    assert re.search(r"^home = /usr/bin$", cfg, re.M), cfg
    langso = pwd.getpwnam("langso")
    for path, mode, owner, group in (
        (ETC, 0o750, "root", "langso"),
        (ETC / "hub.toml", 0o640, "root", "langso"),
        (ETC / "hub.env", 0o600, "root", "root"),
        (DATA, 0o750, "langso", "langso"),
        (DATA / "hub.db", None, "langso", "langso"),
        (DYNSEC, 0o600, "mosquitto", "mosquitto"),
        (CTRL_CONF, 0o600, "root", "root"),
    ):
        st = path.stat()
        assert pwd.getpwuid(st.st_uid).pw_name == owner, path
        assert grp.getgrgid(st.st_gid).gr_name == group, path
        assert mode is None or st.st_mode & 0o777 == mode, (path, oct(st.st_mode))
    assert langso.pw_dir == str(DATA) and langso.pw_shell == "/usr/sbin/nologin"
    assert "langso" in grp.getgrnam("audio").gr_mem
    assert 'data_dir = "/var/lib/langso"' in (ETC / "hub.toml").read_text()
    # Nothing started: --no-start says how.
    assert "nothing was started (--no-start)" in installed.output
    # --https: a certificate for this machine's names, its key readable by the hub only.
    cert, key = Path("/etc/langso/tls/hub.crt"), Path("/etc/langso/tls/hub.key")
    assert cert.is_file() and key.stat().st_mode & 0o777 == 0o640
    assert f'cert_file = "{cert}"' in Path("/etc/langso/hub.toml").read_text()
    assert "staff dashboard:  https://" in installed.output


def test_systemd_analyze_verify_accepts_every_installed_unit(installed: Installed) -> None:
    units = installed_units()
    r = subprocess.run(
        ["systemd-analyze", "verify", *map(str, units)], capture_output=True, text=True, timeout=60
    )
    ours = [line for line in (r.stdout + r.stderr).splitlines() if "langso" in line]
    assert r.returncode == 0 and not ours, r.stdout + r.stderr
    # Every command a unit runs exists and is executable (verify checks ExecStart only).
    for path in units:
        for key, value in unit_lines(path):
            if key.startswith("Exec"):
                exe = shlex.split(value)[0].lstrip("-@:+!")
                assert os.access(exe, os.X_OK), f"{path.name}: {key}={value}"


def hub_environment(unit: Path) -> tuple[list[str], str, str, dict[str, str]]:
    """ExecStart, User, WorkingDirectory and the environment the unit gives the hub."""
    lines = unit_lines(unit)
    s = dict(lines)
    user = s["User"]
    pw = pwd.getpwnam(user)
    env = {
        "PATH": SYSTEMD_PATH,
        "HOME": pw.pw_dir,
        "USER": user,
        "LOGNAME": user,
        "SHELL": pw.pw_shell,
    }
    for key, value in lines:
        if key == "Environment":
            for item in shlex.split(value):
                k, _, v = item.partition("=")
                env[k] = v
        elif key == "EnvironmentFile":
            for line in Path(value.removeprefix("-")).read_text().splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    k, _, v = line.partition("=")
                    env[k.strip()] = v.strip()
    return shlex.split(s["ExecStart"]), user, s["WorkingDirectory"], env


def installed_broker(work: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Mosquitto with the installed langso.conf and accounts, laid out as Debian's main
    mosquitto.conf does it, on a free loopback port."""
    port = free_port()
    conf_d = work / "conf.d"
    conf_d.mkdir()
    text = MOSQ_CONF.read_text()
    assert len(re.findall(r"^listener 1883$", text, re.M)) == 1
    (conf_d / "langso.conf").write_text(
        re.sub(r"^listener 1883$", f"listener {port} 127.0.0.1", text, flags=re.M)
    )
    (work / "mosquitto.conf").write_text(
        f"persistence_location {work}/\nlog_dest stderr\ninclude_dir {conf_d}\n"
    )
    mosq = pwd.getpwnam("mosquitto")
    os.chown(work, mosq.pw_uid, mosq.pw_gid)
    with open(work / "mosquitto.log", "wb") as log:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        proc = subprocess.Popen([exe, "-c", str(work / "mosquitto.conf")], stderr=log)
    try:
        wait_port("127.0.0.1", port)
    except TimeoutError:
        proc.kill()
        proc.wait(10)
        raise AssertionError((work / "mosquitto.log").read_text()) from None
    return proc, port


def stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def open_files(pid: int) -> set[str]:
    """What a running process has open (one it closes while being listed is left out: the
    hub's start-up renders open and close pipes to espeak-ng and ffmpeg)."""
    out: set[str] = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            out.add(os.readlink(fd))
        except FileNotFoundError:
            continue
    return out


def test_the_installed_hub_runs_from_its_installed_paths(installed: Installed) -> None:
    argv, user, workdir, env = hub_environment(UNIT_DIR / "langso-hub.service")
    assert argv[:2] == [str(PREFIX / "venv/bin/langso"), "run"]
    assert env["LANGSO_MQTT__USERNAME"] == "langso-hub" and env["LANGSO_MQTT__PASSWORD"]
    http_port = free_port()
    work = Path(tempfile.mkdtemp(prefix="langso-broker-"))
    broker, mqtt_port = installed_broker(work)
    # The test's overrides: the broker's and the web server's port, and the file sink (in
    # the data directory) instead of ALSA. Everything else is the installed settings.
    env |= {
        "LANGSO_MQTT__PORT": str(mqtt_port),
        "LANGSO_HTTP__HOST": "127.0.0.1",
        "LANGSO_HTTP__PORT": str(http_port),
        "LANGSO_AUDIO__SINK": "file",
    }
    log = work / "hub.log"
    with open(log, "wb") as out:
        hub = subprocess.Popen(
            ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--", *argv],
            env=env,
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    # --https: the installer made the hub a certificate of its own and named it in the settings.
    url = f"https://127.0.0.1:{http_port}"
    try:
        wait_port("127.0.0.1", http_port, timeout=30)
        with httpx.Client(base_url=url, timeout=60, verify=False) as http:
            # The broker account the installer made works with the password in hub.env.
            wait_for(
                lambda: http.get("/api/health").json().get("mqtt") == "connected",
                15,
                "the hub's broker account to be accepted",
            )
            # The hub runs as langso, on the database in /var/lib/langso.
            assert pwd.getpwuid(Path(f"/proc/{hub.pid}").stat().st_uid).pw_name == "langso"
            fds = open_files(hub.pid)
            assert str(DATA / "hub.db") in fds, fds
            # The admin account (password printed once by the installer) sends an emergency.
            r = http.post(
                "/api/auth/token",
                data={"username": "admin", "password": installed.admin_password},
            )
            assert r.status_code == 200, r.text
            headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
            body: dict[str, object] = {"title": "Lũ về", "text": "Nước lên."}
            body |= {"category": "emergency", "priority": "emergency", "zones": ["all"]}
            r = http.post("/api/announcements", json=body, headers=headers)
            assert r.status_code == 201, r.text
            aid = r.json()["id"]

            def played() -> bool:
                rows = http.get("/api/broadcasts", headers=headers).json()
                return any(b["announcement_id"] == aid and b["status"] == "played" for b in rows)

            wait_for(played, 60, "the emergency to play")
        out_files = list((DATA / "broadcasts").glob(f"*{aid}*.wav"))
        assert len(out_files) == 1 and out_files[0].stat().st_size > 10_000, out_files
        assert pwd.getpwuid(out_files[0].stat().st_uid).pw_name == "langso"
        # A clean stop, as systemd counts it: exit 0, or SIGTERM re-raised by uvicorn
        # after its shutdown (SuccessExitStatus includes SIGTERM for services).
        assert stop(hub) in (0, -signal.SIGTERM), log.read_text()[-3000:]
        assert "Application shutdown complete" in log.read_text()
    finally:
        stop(hub)
        stop(broker)
        shutil.rmtree(work, ignore_errors=True)


def test_a_second_install_keeps_settings_secrets_and_data(installed: Installed) -> None:
    house = wheelhouse()
    toml = ETC / "hub.toml"
    edited = toml.read_text().replace('timezone = "Asia/Ho_Chi_Minh"', 'timezone = "Asia/Bangkok"')
    assert edited != toml.read_text()
    toml.write_text(edited)
    kept = {p: p.read_bytes() for p in (toml, ETC / "hub.env", CTRL_CONF, MOSQ_CONF)}

    def users() -> list[tuple[str, str]]:
        conn = sqlite3.connect(f"file:{DATA / 'hub.db'}?mode=ro", uri=True)
        try:
            return conn.execute(
                "SELECT username, password_hash FROM users ORDER BY username"
            ).fetchall()
        finally:
            conn.close()

    accounts = users()
    start = time.monotonic()
    r = run_script("install-pi.sh", "--no-start", "--https", "--wheelhouse", str(house))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert time.monotonic() - start < 60
    assert {p: p.read_bytes() for p in kept} == kept
    assert users() == accounts
    assert "admin password" not in r.stdout and "admin exists: kept" in r.stdout
    assert "hub.toml exists: kept" in r.stdout
    # The hub's broker account still has the password of hub.env (set again, same one).
    clients = {c["username"]: c for c in json.loads(DYNSEC.read_text())["clients"]}
    assert set(clients) == {"langso-hub", "langso-admin"}
    password = re.search(r"^LANGSO_MQTT__PASSWORD=(\S+)$", kept[ETC / "hub.env"].decode(), re.M)
    assert password
    hub = clients["langso-hub"]
    salt = base64.b64decode(hub["salt"])
    digest = hashlib.pbkdf2_hmac("sha512", password.group(1).encode(), salt, hub["iterations"])
    assert base64.b64encode(digest).decode() == hub["password"]


def test_uninstall_leaves_the_machine_as_found(installed: Installed) -> None:
    r = uninstall()
    assert r.returncode == 0, r.stdout + r.stderr
    assert machine_state() == installed.before
    # Again: nothing left to do, still fine.
    r = uninstall()
    assert r.returncode == 0 and "no langso units" in r.stdout, r.stdout + r.stderr
    assert machine_state() == installed.before
