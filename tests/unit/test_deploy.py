"""deploy/: the Pi installer's plan, the systemd units, the production broker's settings.

The installer is checked here through ``--dry-run`` with every command that could change
this machine replaced by a stub that records the call; tests/e2e/test_install_pi.py runs it
for real (root). The broker with its accounts runs in test_deploy_broker.py.
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from hub.cli import build_parser, cmd_run
from hub.settings import IngestSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = DEPLOY / "systemd"
MOSQ = DEPLOY / "mosquitto"
HUB_USER = "langso-hub"


def _find(binary: str) -> str | None:
    found = shutil.which(binary)
    if found:
        return found
    sbin = Path("/usr/sbin") / binary
    return str(sbin) if sbin.exists() else None


def _need(binary: str) -> str:
    found = _find(binary)
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail(f"{binary} is missing on CI: the Makefile must install it")
    pytest.skip(f"{binary} is not installed (run `make test`, which installs it)")


def directives(path: Path) -> list[tuple[str, str]]:
    """(keyword, rest) for each non-comment line of a Mosquitto conf or ACL file."""
    out = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, rest = line.partition(" ")
            out.append((key, rest.strip()))
    return out


def unit(name: str) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    cp.read_string((UNITS / name).read_text())
    return cp


# ---- scripts -------------------------------------------------------------------------------


@pytest.mark.parametrize("script", sorted(DEPLOY.glob("*.sh")), ids=lambda p: p.name)
def test_shell_script_parses(script: Path) -> None:
    r = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("name", ["install-pi.sh", "uninstall-pi.sh", "add-device.sh"])
def test_shellcheck_clean(name: str) -> None:
    shellcheck = _find("shellcheck")
    if not shellcheck:
        pytest.skip("shellcheck is not installed")
    r = subprocess.run([shellcheck, str(DEPLOY / name)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout


# Commands that change a machine. In a dry run the installer may only print them.
MUTATING = [
    *("apt-get", "apt", "dpkg", "useradd", "usermod", "groupadd", "userdel"),
    *("install", "cp", "mv", "rm", "ln", "chown", "chmod", "mkdir", "touch", "tee"),
    *("systemctl", "timedatectl", "mosquitto_passwd", "runuser", "sudo"),
    *("python3", "pip", "pip3", "mktemp", "tar"),
]


def dry(stubs: Path, script: str, *args: str) -> str:
    """A dry run of a deploy script with every mutating command replaced by a stub that
    records the call: none may be called."""
    calls = stubs / "calls.log"
    for name in MUTATING:
        stub = stubs / name
        stub.write_text(f'#!/bin/sh\necho "{name} $*" >> "{calls}"\nexit 1\n')
        stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}"}
    r = subprocess.run(
        ["bash", str(DEPLOY / script), "--dry-run", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert not calls.exists(), "the dry run ran:\n" + calls.read_text()
    return r.stdout


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> str:
    return dry(tmp_path_factory.mktemp("stubs"), "install-pi.sh")


def shipped_units() -> list[Path]:
    return sorted([*UNITS.glob("langso-*.service")]) + sorted([*UNITS.glob("langso-*.timer")])


def test_install_dry_run_names_every_unit_and_file(dry_run: str) -> None:
    # Every unit of deploy/systemd, whatever it is; enabled when it has an [Install].
    units = shipped_units()
    assert sorted(p.name for p in UNITS.iterdir()) == sorted(p.name for p in units)
    for unit_file in units:
        assert f"install -m 0644 {unit_file} /etc/systemd/system/{unit_file.name}" in dry_run
    enabled = [p.name for p in units if "[Install]" in p.read_text()]
    assert {"langso-hub.service", "langso-backup.timer"} <= set(enabled)
    assert f"systemctl enable {' '.join(enabled)}" in dry_run
    for path in (
        "/opt/langso/venv",
        "/etc/langso/hub.toml",
        "/etc/langso/hub.env",
        "/var/lib/langso",
        "/var/lib/langso/backups",
        "/etc/mosquitto/conf.d/langso.conf",
        "/var/lib/mosquitto/dynamic-security.json",
        "/root/.config/mosquitto_ctrl",
        "/usr/local/sbin/langso-add-device",
    ):
        assert path in dry_run, path
    assert "install-system-packages.sh" in dry_run and " sqlite3 " in dry_run
    assert "systemctl restart mosquitto.service" in dry_run
    assert "systemctl restart langso-hub.service" in dry_run
    assert "timedatectl set-ntp true" in dry_run
    assert "user add admin --role admin --password-stdin" in dry_run
    # The hub's and mosquitto_ctrl's accounts through add-device.sh (more PBKDF2 rounds;
    # the password on stdin), written with the broker stopped.
    dynsec = "--dynsec-file /var/lib/mosquitto/dynamic-security.json"
    for kind, user in (("hub", HUB_USER), ("admin", "langso-admin")):
        assert f"langso-add-device --kind {kind} --password-stdin {dynsec} {user}" in dry_run
    assert "systemctl stop mosquitto.service" in dry_run
    assert "chmod 0600 /var/lib/mosquitto/dynamic-security.json" in dry_run
    assert re.search(r"^    site: [a-z0-9-]+$", dry_run, re.M)
    # Never a password in the plan, generated or default.
    assert "LANGSO_MQTT__PASSWORD" not in dry_run


def test_install_refuses_unknown_option() -> None:
    r = subprocess.run(
        ["bash", str(DEPLOY / "install-pi.sh"), "--bogus"], capture_output=True, text=True
    )
    assert r.returncode == 2 and "unknown option --bogus" in r.stderr


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--wheelhouse"], "--wheelhouse needs a folder of wheels"),
        (["--wheelhouse", "/nonexistent"], "no *.whl files there"),
        (["--rtc", "pcf8523"], "the supported clock board is ds3231"),
    ],
)
def test_install_refuses_bad_option_values(args: list[str], reason: str) -> None:
    r = subprocess.run(
        ["bash", str(DEPLOY / "install-pi.sh"), "--dry-run", *args],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and reason in r.stderr, r.stderr


def test_install_no_start_offline_starts_nothing_and_uses_the_wheels_only(
    tmp_path: Path,
) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "x-1.0-py3-none-any.whl").write_bytes(b"")
    out = dry(
        tmp_path, "install-pi.sh", "--no-start", "--wheelhouse", str(wheels), "--rtc", "ds3231"
    )
    # Installed and enabled (so the Pi starts it at boot), started by nothing.
    assert "systemctl enable langso-hub.service" in out
    assert not re.search(r"would run: systemctl (start|restart|stop) ", out), out
    assert "timedatectl set-ntp" not in out.replace("sudo timedatectl set-ntp", "")
    assert "nothing was started (--no-start)" in out
    # The wheels only, no index, no pip upgrade from the internet.
    assert f"pip install --quiet --no-index --find-links {wheels}" in out
    assert "--upgrade pip" not in out
    # The distribution's Python, not one from root's PATH.
    assert "would run: /usr/bin/python3 -m venv --clear /opt/langso/venv" in out or (
        "venv exists" in out
    )
    # The clock board: on a Pi the overlay line, elsewhere a clean skip.
    if "Raspberry Pi" in _read("/proc/device-tree/model"):
        assert "dtoverlay=i2c-rtc,ds3231" in out
    else:
        assert "--rtc ds3231: not a Raspberry Pi" in out and "skipped" in out
        assert "fake-hwclock" not in out.split("==> User")[0]


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def test_uninstall_dry_run_and_bad_option(tmp_path: Path) -> None:
    out = dry(tmp_path, "uninstall-pi.sh", "--purge")
    assert "Dry run: nothing is changed" in out
    r = subprocess.run(
        ["bash", str(DEPLOY / "uninstall-pi.sh"), "--bogus"], capture_output=True, text=True
    )
    assert r.returncode == 2 and "unknown option --bogus" in r.stderr


# ---- systemd units ---------------------------------------------------------------------------


def test_hub_unit(dry_run: str) -> None:
    u = unit("langso-hub.service")
    s = u["Service"]
    # Supervised (issue 12): READY and watchdog pings from the hub, restarted always,
    # the safe state when the restarts give up.
    assert s["Type"] == "notify" and int(s["WatchdogSec"]) > 0
    assert s["User"] == "langso"
    assert s["Restart"] == "always" and s["RestartSec"] == "2"
    assert u["Unit"]["OnFailure"] == "langso-safe.service"
    assert (UNITS / "langso-safe.service").exists()
    assert s["KillSignal"] == "SIGTERM" and s["TimeoutStopSec"] == "15"
    assert s["NoNewPrivileges"] == "yes" and s["ProtectSystem"] == "strict"
    assert s["ProtectHome"] == "yes" and s["PrivateTmp"] == "yes"
    assert s["ReadWritePaths"] == "/var/lib/langso" == s["WorkingDirectory"]
    assert s["MemoryMax"] == "200M"
    # PrivateDevices would hide the GPIO chips and the sound card.
    assert u.get("Service", "PrivateDevices", fallback="no") == "no"
    allowed = re.findall(r"^DeviceAllow=(\S+)", (UNITS / "langso-hub.service").read_text(), re.M)
    assert {"char-gpiochip", "char-alsa"} <= set(allowed)
    for dep in ("mosquitto.service", "network-online.target", "time-sync.target"):
        assert dep in u["Unit"]["After"].split() and dep in u["Unit"]["Wants"].split()
    assert u["Install"]["WantedBy"] == "multi-user.target"

    argv = shlex.split(s["ExecStart"])
    assert argv[0] == "/opt/langso/venv/bin/langso" and argv[1] == "run"
    # The command line really is `langso run` of this version of the CLI.
    assert build_parser().parse_args(argv[1:]).func is cmd_run
    config = argv[argv.index("--config") + 1]
    assert s["Environment"] == f"LANGSO_CONFIG={config}"
    # The paths the unit uses are the ones the installer creates.
    env_file = s["EnvironmentFile"].removeprefix("-")
    for path in (config, env_file, s["WorkingDirectory"], str(Path(argv[0]).parents[1])):
        assert path in dry_run, path


def test_every_langso_command_of_every_unit_is_one_this_cli_knows(dry_run: str) -> None:
    """ExecStart, ExecStopPost... of every shipped unit: the installed program, a command
    line this version of `langso` parses, and the settings file the installer writes."""
    parser = build_parser()
    seen = []
    for path in shipped_units():
        for line in path.read_text().splitlines():
            key, _, value = line.partition("=")
            if not key.startswith("Exec"):
                continue
            argv = shlex.split(value)
            exe = argv[0].lstrip("-@:+!")
            assert exe == "/opt/langso/venv/bin/langso", f"{path.name}: {line}"
            parser.parse_args(argv[1:])  # exits 2 (SystemExit) on a command it does not know
            assert argv[argv.index("--config") + 1] == "/etc/langso/hub.toml"
            seen.append((path.name, key, argv[1]))
    assert ("langso-hub.service", "ExecStart", "run") in seen
    # The amplifier and zones go off after every stop of the hub (a GPIO output keeps
    # its level when the process dies).
    assert ("langso-hub.service", "ExecStopPost", "gpio") in seen


def test_backup_units() -> None:
    svc, timer = unit("langso-backup.service"), unit("langso-backup.timer")
    assert svc["Service"]["Type"] == "oneshot" and svc["Service"]["User"] == "langso"
    assert svc["Service"]["ReadWritePaths"] == "/var/lib/langso"
    assert "langso backup" in svc["Service"]["ExecStart"]
    assert timer["Timer"]["OnCalendar"] and timer["Timer"]["Persistent"] == "true"
    assert timer["Install"]["WantedBy"] == "timers.target"


def test_mosquitto_conf_limits() -> None:
    conf = dict(directives(MOSQ / "langso.conf"))
    assert conf["allow_anonymous"] == "false"
    assert conf["per_listener_settings"] == "false"
    # The next batch is on its way while the hub commits one (else the writer idles).
    ingest = IngestSettings()
    for c in (conf, dict(directives(ROOT / "config" / "mosquitto-dev.conf"))):
        assert int(c["max_inflight_messages"]) >= ingest.batch_size + ingest.queue_max
    assert int(conf["max_queued_messages"]) >= 180_000
    # Room for the 180,000 messages of an hour away at a few hundred bytes each.
    assert int(conf["max_queued_bytes"]) >= 180_000 * 300
    assert int(conf["max_packet_size"]) == 65536
    assert conf["plugin"] == "mosquitto_dynamic_security.so"
    assert conf["plugin_opt_config_file"] == "/var/lib/mosquitto/dynamic-security.json"
    assert conf["use_username_as_clientid"] == "true"
    assert not {"password_file", "acl_file"} & set(conf)
    # Debian's mosquitto.conf sets these; a second value stops Mosquitto from starting.
    assert not {"persistence_location", "pid_file", "log_dest"} & set(conf)
