"""deploy/: the production broker on a real Mosquitto, with the accounts add-device.sh makes.

The broker tests start Mosquitto with the production ``langso.conf`` (only the listener
and the accounts file changed) and accounts made by ``add-device.sh`` in the
dynamic-security plugin's file, and check with paho-mqtt who may publish, subscribe to
and read what (split from test_deploy.py, which checks the installer and the units).
"""

from __future__ import annotations

import base64
import getpass
import json
import os
import queue
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from hub.app import build_router
from hub.settings import Settings
from tests.broker import free_port, wait_port
from tests.unit.test_deploy import _need, directives

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
MOSQ = DEPLOY / "mosquitto"
SITE = Settings().site
HUB_USER = "langso-hub"
PREFIX = f"village/{SITE}"
WAIT_S = 5.0
# The accounts of the test village, one of each kind add-device.sh knows (and a second
# AP and speaker to try each other's topics).
KINDS = {
    "ap-01": "ap",
    "ap-02": "ap",
    "sen-01": "sensor",
    "btn-01": "button",
    "spk-01": "speaker",
    "spk-02": "speaker",
    "col-01": "collectd",
    "tas-01": "tasmota",
    "esp-01": "esphome",
    "zigbee2mqtt": "zigbee2mqtt",
    "gw-01": "gateway",
}


def hub_filters() -> tuple[str, ...]:
    return build_router(Settings()).filters


def dynsec_rights(path: Path) -> dict[str, list[tuple[str, str]]]:
    """The plugin's file → {user name: [(acltype, topic)]} over the account's roles."""
    conf = json.loads(path.read_text())
    roles = {r["rolename"]: [(a["acltype"], a["topic"]) for a in r["acls"]] for r in conf["roles"]}
    return {
        c["username"]: [acl for r in c["roles"] for acl in roles[r["rolename"]]]
        for c in conf["clients"]
    }


def test_rights_let_the_hub_read_everything_it_subscribes_to(tmp_path: Path) -> None:
    add_hub_account(tmp_path, "hub-" + os.urandom(8).hex())
    for device, kind in KINDS.items():
        add_device(tmp_path, device, "--kind", kind)
    rights = dynsec_rights(tmp_path / "dynsec.json")
    hub = rights[HUB_USER]
    for acltype in ("subscribePattern", "publishClientReceive"):
        missing = [f for f in hub_filters() if (acltype, f) not in hub]
        assert not missing, f"grant these to {HUB_USER} in deploy/add-device.sh ({acltype})"
    writable = {t for a, t in hub if a == "publishClientSend"}
    for topic in ("hub/#", "announcements/#", "playout/state", "alerts/#", "speaker/+/cmd"):
        assert f"{PREFIX}/{topic}" in writable
    assert "homeassistant/#" in writable
    # Nobody may announce but the gateway kind, made for it.
    announce = f"{PREFIX}/cmd/announce"
    may = {
        user
        for user, acls in rights.items()
        for a, t in acls
        if a == "publishClientSend" and mqtt.topic_matches_sub(t, announce)
    }
    assert may == {"gw-01"}
    conf = json.loads((tmp_path / "dynsec.json").read_text())
    assert conf["defaultACLAccess"] == {
        "publishClientSend": False,
        "publishClientReceive": False,
        "subscribe": False,
        "unsubscribe": True,
    }


def test_bridge_example_pushes_the_public_topics_and_takes_the_emergency_topic() -> None:
    d = directives(MOSQ / "bridge-commune.conf.example")
    topics = [rest.split() for key, rest in d if key == "topic"]
    out = {t[0] for t in topics if t[1] == "out"}
    for topic in ("hub/status", "announcements/#", "playout/state", "alerts/#"):
        assert f"village/@SITE@/{topic}" in out
    assert ["village/@SITE@/cmd/announce", "in", "1"] in topics
    assert not [t for t in topics if t[1] == "both"]
    conf = dict(d)
    assert conf["cleansession"] == "false"
    assert conf["notification_topic"] == "village/@SITE@/bridge/state"
    assert "bridge_cafile" in conf


# ---- a real broker ---------------------------------------------------------------------------


class Mosquitto:
    """One Mosquitto process laid out as Debian's: a main mosquitto.conf that sets the
    persistence location and the log, then ``include_dir conf.d`` with our files, so a
    setting our files repeat (Mosquitto refuses some duplicates) fails here too.
    Stopped by its own handle."""

    def __init__(self, workdir: Path, conf_d: dict[str, str]) -> None:
        self.exe = _need("mosquitto")
        self.port = free_port()
        self.workdir = workdir
        (workdir / "conf.d").mkdir(parents=True, exist_ok=True)
        for name, text in conf_d.items():
            (workdir / "conf.d" / name).write_text(text.replace("@PORT@", str(self.port)))
        self.conf = workdir / "mosquitto.conf"
        # `user`: run as whoever runs the tests (root would otherwise drop to the
        # mosquitto user, which cannot read the temporary directory).
        self.conf.write_text(
            f"user {getpass.getuser()}\n"
            "persistence true\n"
            f"persistence_location {workdir}/\n"
            "log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n"
            f"include_dir {workdir / 'conf.d'}\n"
        )
        self.log = open(workdir / "mosquitto.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([self.exe, "-c", str(self.conf)], stderr=self.log)
        try:
            wait_port("127.0.0.1", self.port)
        except TimeoutError:
            self.stop()
            raise AssertionError((workdir / "mosquitto.log").read_text()) from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.log.close()


def production_conf(workdir: Path) -> str:
    """langso.conf with a loopback listener and the temporary accounts file."""
    lines = []
    listeners = 0
    for line in (MOSQ / "langso.conf").read_text().splitlines():
        key = line.split(" ", 1)[0]
        if key == "listener":
            listeners += 1
            line = "listener @PORT@ 127.0.0.1"
        elif key == "plugin_opt_config_file":
            line = f"plugin_opt_config_file {workdir / 'dynsec.json'}"
        lines.append(line)
    assert listeners == 1
    return "\n".join(lines) + "\n"


def add_device(workdir: Path, device: str, *args: str) -> str:
    """Run deploy/add-device.sh for real against the temporary accounts file."""
    r = subprocess.run(
        [
            "bash",
            str(DEPLOY / "add-device.sh"),
            "--site",
            SITE,
            "--no-restart",
            "--dynsec-file",
            str(workdir / "dynsec.json"),
            "--host",
            "127.0.0.1",
            *args,
            device,
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
    m = re.search(r"^\s*password:\s+(\S+)$", r.stdout, re.M)
    assert m and re.search(rf"^\s*username:\s+{device}$", r.stdout, re.M), r.stdout
    return m.group(1)


@dataclass
class Village:
    broker: Mosquitto
    passwords: dict[str, str]
    workdir: Path


def add_hub_account(workdir: Path, password: str) -> None:
    """The hub's account as install-pi.sh makes it: add-device.sh --kind hub, password on
    stdin."""
    dynsec = str(workdir / "dynsec.json")
    options = ["--kind", "hub", "--password-stdin", "--site", SITE, "--dynsec-file", dynsec]
    r = subprocess.run(
        ["bash", str(DEPLOY / "add-device.sh"), *options, "--no-restart", HUB_USER],
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
    assert password not in r.stdout + r.stderr


@pytest.fixture(scope="module")
def village(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Village]:
    work = tmp_path_factory.mktemp("village-broker")
    hub_password = "hub-" + os.urandom(8).hex()
    add_hub_account(work, hub_password)
    passwords = {HUB_USER: hub_password}
    for device, kind in KINDS.items():
        passwords[device] = add_device(work, device, "--kind", kind)
    broker = Mosquitto(work, {"langso.conf": production_conf(work)})
    yield Village(broker, passwords, work)
    broker.stop()


class Client:
    """A paho-mqtt 2.x client whose messages land on a queue (from paho's thread)."""

    def __init__(
        self,
        port: int,
        user: str | None,
        password: str | None,
        *,
        will: str | None = None,
        client_id: str = "",
        clean_session: bool = True,
    ) -> None:
        self.connected: queue.Queue[ReasonCode] = queue.Queue()
        self.sessions: list[bool] = []  # session_present of each CONNACK
        self.disconnects: list[ReasonCode] = []
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.c = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id or "", clean_session=clean_session
        )
        if user is not None:
            self.c.username_pw_set(user, password)
        if will:
            self.c.will_set(will, b"offline", qos=1, retain=True)

        def on_connect(
            _c: object, _u: object, flags: mqtt.ConnectFlags, reason: ReasonCode, _p: object
        ) -> None:
            self.sessions.append(flags.session_present)
            self.connected.put(reason)

        self.c.on_connect = on_connect
        self.c.on_disconnect = lambda _c, _u, _f, reason, _p: self.disconnects.append(reason)
        self.c.on_message = lambda _c, _u, msg: self.messages.put((msg.topic, bytes(msg.payload)))
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        self.reason = self.connected.get(timeout=WAIT_S)

    def subscribe(self, *filters: str) -> list[int]:
        """The SUBACK's return codes, one per filter (1: granted QoS 1, 0x80: refused)."""
        done: queue.Queue[tuple[int, list[ReasonCode]]] = queue.Queue()
        self.c.on_subscribe = lambda _c, _u, mid, codes, _p: done.put((mid, codes))
        _, mid = self.c.subscribe([(f, 1) for f in filters])
        got, codes = done.get(timeout=WAIT_S)
        assert got == mid
        return [c.value for c in codes]

    def publish(self, topic: str, payload: bytes = b"{}") -> None:
        self.c.publish(topic, payload, qos=1).wait_for_publish(timeout=WAIT_S)

    def until(self, topic: str, payload: bytes | None = None) -> list[str]:
        """Topics received up to and including ``topic`` (with ``payload`` if given),
        within a bounded wait."""
        seen: list[str] = []
        deadline = time.monotonic() + WAIT_S
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{topic} never arrived; got {seen}"
            try:
                t, body = self.messages.get(timeout=remaining)
            except queue.Empty:
                raise AssertionError(f"{topic} never arrived; got {seen}") from None
            seen.append(t)
            if t == topic and payload in (None, body):
                return seen

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


class Connect(Protocol):
    def __call__(
        self,
        user: str | None,
        *,
        password: str | None = None,
        will: str | None = None,
        client_id: str = "",
        clean_session: bool = True,
    ) -> Client: ...


@pytest.fixture
def connect(village: Village) -> Iterator[Connect]:
    clients: list[Client] = []

    def make(
        user: str | None,
        *,
        password: str | None = None,
        will: str | None = None,
        client_id: str = "",
        clean_session: bool = True,
    ) -> Client:
        pw = password if password is not None else village.passwords.get(user or "")
        c = Client(
            village.broker.port,
            user,
            pw,
            will=will,
            client_id=client_id,
            clean_session=clean_session,
        )
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


@pytest.fixture
def hub(connect: Connect) -> Client:
    """The hub's account, subscribed to the hub's own filters, with its will."""
    c = connect(HUB_USER, will=f"{PREFIX}/hub/status", client_id=f"langso-hub-{SITE}")
    assert not c.reason.is_failure, c.reason
    assert c.subscribe(*hub_filters()) == [1] * len(hub_filters())
    return c


def test_anonymous_and_wrong_passwords_are_refused(connect: Connect) -> None:
    assert connect(None).reason.is_failure
    assert connect("ap-01", password="not-the-password").reason.is_failure
    assert connect("nobody", password="x").reason.is_failure


def test_device_publishes_its_own_state(hub: Client, connect: Connect) -> None:
    ap = connect("ap-01", will=f"{PREFIX}/ap/ap-01/status")
    assert not ap.reason.is_failure
    ap.publish(f"{PREFIX}/ap/ap-01/state", b'{"clients": 12}')
    assert hub.until(f"{PREFIX}/ap/ap-01/state")[-1] == f"{PREFIX}/ap/ap-01/state"


def test_hub_receives_every_source_it_subscribes_to(hub: Client, connect: Connect) -> None:
    # One publisher of the matching kind and topic per filter; ESPHome's `+/...` filters
    # come from node esp-01.
    examples = {
        f"{PREFIX}/#": ("sen-01", f"{PREFIX}/sensor/sen-01/state"),
        "collectd/#": ("col-01", "collectd/col-01/cpu-0/percent-active"),
        "tele/#": ("tas-01", "tele/tas-01/SENSOR"),
        "zigbee2mqtt/#": ("zigbee2mqtt", "zigbee2mqtt/muc-nuoc"),
    }
    for f in hub_filters():
        if f.startswith("+/"):
            examples[f] = ("esp-01", f.replace("+", "esp-01", 1).replace("+", "x"))
        assert f in examples, f"new filter {f}: grant it in add-device.sh and add it here"
        assert mqtt.topic_matches_sub(f, examples[f][1])
    for user, topic in examples.values():
        connect(user).publish(topic)
        hub.until(topic)


def test_device_cannot_speak_for_another_device_or_announce(hub: Client, connect: Connect) -> None:
    ap = connect("ap-01")
    forbidden = [
        f"{PREFIX}/ap/ap-02/state",
        f"{PREFIX}/ap/ap-02/status",
        f"{PREFIX}/cmd/announce",
        f"{PREFIX}/hub/status",
        f"{PREFIX}/button/ap-02/event",
        "collectd/ap-02/cpu-0/percent-active",
        "ap-02/sensor/x/state",
        # Its own name under another kind: an AP cannot press a button or pose as a
        # sensor, a collectd host or an ESPHome node.
        f"{PREFIX}/button/ap-01/event",
        f"{PREFIX}/sensor/ap-01/state",
        "collectd/ap-01/cpu-0/percent-active",
        "ap-01/sensor/x/state",
    ]
    for topic in forbidden:
        ap.publish(topic)
    # Mosquitto delivers one client's messages in order: once the allowed one arrives,
    # any forbidden one that got through would already be here.
    ap.publish(f"{PREFIX}/ap/ap-01/state")
    seen = hub.until(f"{PREFIX}/ap/ap-01/state")
    assert not set(seen) & set(forbidden), seen


def test_speaker_receives_only_its_own_commands(hub: Client, connect: Connect) -> None:
    spk = connect("spk-01")
    # (A wildcard over the other speakers is refused: see the SUBACK test below.)
    assert spk.subscribe(f"{PREFIX}/speaker/spk-01/cmd") == [1]
    hub.publish(f"{PREFIX}/speaker/spk-02/cmd", b'{"url": "x"}')
    hub.publish(f"{PREFIX}/speaker/spk-01/cmd", b'{"url": "y"}')
    assert spk.until(f"{PREFIX}/speaker/spk-01/cmd") == [f"{PREFIX}/speaker/spk-01/cmd"]


def test_a_device_cannot_take_over_the_hubs_client_id(connect: Connect) -> None:
    hub_id = f"langso-hub-{SITE}"
    hub = connect(HUB_USER, client_id=hub_id, clean_session=False)
    hub.subscribe(f"{PREFIX}/ap/+/state")
    # Before use_username_as_clientid, this connection took the hub's session and the
    # hub was disconnected (and, reconnecting, knocked the AP off in turn).
    ap = connect("ap-01", client_id=hub_id)
    assert not ap.reason.is_failure
    ap.publish(f"{PREFIX}/ap/ap-01/state", b'{"clients": 1}')
    hub.until(f"{PREFIX}/ap/ap-01/state")
    assert hub.disconnects == [] and hub.c.is_connected()
    assert ap.disconnects == [] and ap.c.is_connected()

    # The hub's persistent session is whole: what arrives while it is away waits for it.
    hub.close()
    ap.publish(f"{PREFIX}/ap/ap-01/state", b'{"clients": 2}')
    again = connect(HUB_USER, client_id=hub_id, clean_session=False)
    assert again.sessions == [True]
    again.until(f"{PREFIX}/ap/ap-01/state", b'{"clients": 2}')


def test_the_bound_client_id_holds_without_use_username_as_clientid(village: Village) -> None:
    """The second lock: should langso.conf lose use_username_as_clientid, the accounts file
    still refuses a device that presents the hub's client id."""
    work = village.workdir / "unbound"
    work.mkdir()
    conf = production_conf(village.workdir).replace("use_username_as_clientid true", "")
    broker = Mosquitto(work, {"langso.conf": conf})
    clients: list[Client] = []
    try:
        hub = Client(broker.port, HUB_USER, village.passwords[HUB_USER], client_id=HUB_USER)
        clients.append(hub)
        assert not hub.reason.is_failure
        ap = Client(broker.port, "ap-01", village.passwords["ap-01"], client_id=HUB_USER)
        clients.append(ap)
        assert ap.reason.is_failure
        assert hub.disconnects == [] and hub.c.is_connected()
    finally:
        for c in clients:
            c.close()
        broker.stop()


def test_account_hashes_have_more_rounds_and_a_bound_client_id(village: Village) -> None:
    conf = json.loads((village.workdir / "dynsec.json").read_text())
    clients = {c["username"]: c for c in conf["clients"]}
    assert set(clients) == set(village.passwords)
    for user, c in clients.items():
        # mosquitto_ctrl's createClient (and mosquitto_passwd) hash with 101 rounds.
        assert c["iterations"] == 10000, user
        assert len(base64.b64decode(c["salt"])) == 12
        assert len(base64.b64decode(c["password"])) == 64  # PBKDF2-SHA512
        assert c["clientid"] == user
    # And the broker accepts them (every account of the fixture connects in these tests).


def test_a_device_cannot_subscribe_beyond_its_own_topics(hub: Client, connect: Connect) -> None:
    spk = connect("spk-01")
    # 0x80 where the account may not read; QoS 1 for its own command topic.
    codes = spk.subscribe(
        "#",
        f"{PREFIX}/#",
        f"{PREFIX}/speaker/+/cmd",
        f"{PREFIX}/speaker/spk-02/cmd",
        f"{PREFIX}/ap/ap-01/state",
        f"{PREFIX}/speaker/spk-01/cmd",
    )
    assert codes == [0x80, 0x80, 0x80, 0x80, 0x80, 1]
    assert connect("ap-01").subscribe("#", "+/status", f"{PREFIX}/speaker/ap-01/cmd") == [0x80] * 3
    # And the refused filters deliver nothing: only its own command arrives.
    hub.publish(f"{PREFIX}/alerts/a1", b"{}")
    hub.publish(f"{PREFIX}/speaker/spk-02/cmd", b"{}")
    connect("ap-02").publish(f"{PREFIX}/ap/ap-02/state", b"{}")
    hub.publish(f"{PREFIX}/speaker/spk-01/cmd", b"{}")
    assert spk.until(f"{PREFIX}/speaker/spk-01/cmd") == [f"{PREFIX}/speaker/spk-01/cmd"]


def test_only_a_gateway_may_announce(hub: Client, connect: Connect) -> None:
    announce = f"{PREFIX}/cmd/announce"
    for user in ("ap-01", "spk-01", "btn-01", "zigbee2mqtt", "esp-01"):
        connect(user).publish(announce, user.encode())
    connect("gw-01").publish(announce, b"gw-01")
    # Each publisher is its own connection, so order across them is not guaranteed;
    # every refused publish was acknowledged (PUBACK) before the gateway's was sent, and
    # Mosquitto routes a message before it acknowledges it.
    assert hub.until(announce) == [announce]
    assert hub.messages.empty()


def test_add_device_refuses_bad_reserved_and_existing_ids(tmp_path: Path) -> None:
    add_device(tmp_path, "ap-09")
    for device, why in (
        ("ap-09", "exists"),
        ("AP/09", "lower-case"),
        ("+", "lower-case"),
        ("village", "reserved"),
        ("langso-hub", "reserved"),
    ):
        r = subprocess.run(
            [
                "bash",
                str(DEPLOY / "add-device.sh"),
                "--site",
                SITE,
                "--no-restart",
                "--dynsec-file",
                str(tmp_path / "dynsec.json"),
                device,
            ],
            capture_output=True,
            text=True,
        )
        assert r.returncode == 2 and why in r.stderr, (device, r.stderr)
    dynsec = tmp_path / "dynsec.json"
    before = json.loads(dynsec.read_text())["clients"][0]
    # --rotate replaces the password of the same account, not a second one; its kind stays.
    add_device(tmp_path, "ap-09", "--rotate")
    after = json.loads(dynsec.read_text())
    assert [c["username"] for c in after["clients"]] == ["ap-09"]
    assert after["clients"][0]["password"] != before["password"]
    assert dynsec_rights(dynsec)["ap-09"] == [("publishClientSend", f"{PREFIX}/ap/ap-09/#")]
    assert dynsec.stat().st_mode & 0o777 == 0o600
    # --delete removes the account and its rights.
    r = subprocess.run(
        [
            "bash",
            str(DEPLOY / "add-device.sh"),
            "--dynsec-file",
            str(dynsec),
            "--no-restart",
            "--delete",
            "ap-09",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(dynsec.read_text())["clients"] == []
    assert json.loads(dynsec.read_text())["roles"] == []


def test_bridge_to_the_commune(tmp_path: Path) -> None:
    """The bridge example, pointed at a second Mosquitto standing in for the commune."""
    _need("mosquitto")
    commune = Mosquitto(
        tmp_path / "commune", {"open.conf": "listener @PORT@ 127.0.0.1\nallow_anonymous true\n"}
    )
    local_dir = tmp_path / "village"
    try:
        local_dir.mkdir()
        bridge = []
        for key, rest in directives(MOSQ / "bridge-commune.conf.example"):
            if key == "address":
                rest = f"127.0.0.1:{commune.port}"
            elif key.startswith("bridge_tls") or key in (
                "bridge_cafile",
                "remote_username",
                "remote_password",
            ):
                continue  # the stand-in commune speaks plain MQTT, anonymously
            bridge.append(f"{key} {rest}".replace("@SITE@", SITE))
        hub_password = "hub-" + os.urandom(8).hex()
        add_hub_account(local_dir, hub_password)
        ap_password = add_device(local_dir, "ap-01")
        local = Mosquitto(
            local_dir,
            {
                "langso.conf": production_conf(local_dir),
                "bridge-commune.conf": "\n".join(bridge) + "\n",
            },
        )
    except BaseException:
        commune.stop()
        raise
    clients: list[Client] = []
    try:
        hub = Client(local.port, HUB_USER, hub_password)
        central = Client(commune.port, None, None)
        ap = Client(local.port, "ap-01", ap_password)
        clients += [hub, central, ap]
        hub.subscribe(*hub_filters())
        hub.until(f"{PREFIX}/bridge/state", b"1")  # the bridge's notification: link up
        central.subscribe("village/#")

        # Up: the hub's public topics and device status, never the raw telemetry.
        ap.publish(f"{PREFIX}/ap/ap-01/state", b'{"clients": 3}')
        ap.publish(f"{PREFIX}/ap/ap-01/status", b"online")
        seen = central.until(f"{PREFIX}/ap/ap-01/status")
        assert f"{PREFIX}/ap/ap-01/state" not in seen
        hub.publish(f"{PREFIX}/alerts/a1", b'{"state": "raised"}')
        central.until(f"{PREFIX}/alerts/a1")

        # Down: the emergency topic, for this village and for all; nothing else.
        central.publish(f"{PREFIX}/speaker/spk-01/cmd", b"{}")
        central.publish(f"{PREFIX}/cmd/announce", b'{"title": "village"}')
        seen = hub.until(f"{PREFIX}/cmd/announce")
        assert f"{PREFIX}/speaker/spk-01/cmd" not in seen
        central.publish("village/all/cmd/announce", b'{"title": "all"}')
        hub.until(f"{PREFIX}/cmd/announce", b'{"title": "all"}')
    finally:
        for c in clients:
            c.close()
        local.stop()
        commune.stop()
