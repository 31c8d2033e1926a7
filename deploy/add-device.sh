#!/usr/bin/env bash
# Create, re-key or delete the broker account of one device (as root) and print the MQTT
# settings to enter into it. Installed as /usr/local/sbin/langso-add-device by install-pi.sh.
#   add-device.sh [--kind KIND] [--rotate | --delete] DEVICE_ID
# KIND: ap (default), sensor, button, speaker, collectd, tasmota, esphome, zigbee2mqtt,
# gateway (may announce on the loudspeakers through cmd/announce); hub and admin are the
# broker accounts of the hub (langso-hub) and of mosquitto_ctrl (langso-admin), which
# install-pi.sh sets. The user name is the device id, and so is the client id.
# Options for other layouts and tests:
#   --rotate            a new password for an existing account, same kind (the device must
#                       be updated, or it is locked out); also brings its rights up to date
#   --delete            remove the account and its rights
#   --site SITE         village id (default: `site` in /etc/langso/hub.toml)
#   --host HOST         address devices connect to (default: this Pi's LAN address)
#   --port PORT         broker port (default 1883)
#   --dynsec-file FILE  the broker's accounts (default /var/lib/mosquitto/dynamic-security.json)
#   --no-restart        only edit the file (the broker is stopped, or restarted later)
#   --password-stdin    take the password from the first line of stdin (else: random)
#   --iterations N      PBKDF2-SHA512 rounds of the stored hash (default 10000)
set -euo pipefail

usage() { sed -n '2,21s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }
die() { printf 'add-device.sh: %s\n' "$*" >&2; exit 2; }

# How accounts reach the broker: Mosquitto's dynamic-security plugin reads this JSON file
# at start (langso.conf: plugin_opt_config_file). The plugin also takes changes at run
# time from `mosquitto_ctrl dynsec`, but it then hashes every password with 101 PBKDF2
# rounds and offers no option for more, while it honours the "iterations" of each account
# it loads from the file. So this script writes the file itself, with the broker stopped
# for the second it takes: connected devices and the hub reconnect on their own, and the
# hub's persistent session (with its queued QoS 1 messages) is saved at the stop and
# restored at the start. Each CONNECT with a known user name costs the single-threaded
# broker one hash: 10,000 rounds measured 8 ms per CONNECT on an x86 core (0.3 ms at
# 101), a few times that on a Pi. The passwords made here are random (20 or 32 letters
# and digits, over 100 bits), which is what keeps a stolen file from being cracked; the
# rounds slow down a guess at a password a person chose.
iterations=10000
dynsec_file=/var/lib/mosquitto/dynamic-security.json
kind="" action=add restart=1 site="" host="" port=1883 password_stdin=0
config=/etc/langso/hub.toml
python=/opt/langso/venv/bin/python
device=""
while (($#)); do
  case $1 in
    --kind) kind=${2:?--kind needs a value}; shift 2 ;;
    --rotate) action=rotate; shift ;;
    --delete) action=delete; shift ;;
    --site) site=${2:?--site needs a value}; shift 2 ;;
    --host) host=${2:?--host needs a value}; shift 2 ;;
    --port) port=${2:?--port needs a value}; shift 2 ;;
    --dynsec-file) dynsec_file=${2:?--dynsec-file needs a value}; shift 2 ;;
    --no-restart) restart=0; shift ;;
    --password-stdin) password_stdin=1; shift ;;
    --iterations) iterations=${2:?--iterations needs a value}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; die "unknown option $1" ;;
    *) [[ -z $device ]] || die "one DEVICE_ID at a time"; device=$1; shift ;;
  esac
done
[[ -n $device ]] || { usage >&2; die "DEVICE_ID missing"; }
if ! [[ $iterations =~ ^[1-9][0-9]{2,6}$ ]] || ((iterations < 101)); then
  die "--iterations: a whole number from 101 to 9999999"
fi

# The hub's device ids (lower-case letters, digits, '-'); this also keeps the MQTT
# wildcards + and # and the level separator / out of the topics of the account's rights.
[[ $device =~ ^[a-z0-9][a-z0-9-]{0,62}$ ]] ||
  die "'$device': use lower-case letters, digits and '-' (e.g. ap-nha-van-hoa)"
# Names of topic roots and of the hub's own accounts: an ESPHome account named after a
# root (<name>/status, <name>/sensor/...) would write into another source's tree.
case $device in
  village | all | homeassistant | collectd | tele | stat | cmnd | commune-gateway)
    die "'$device' is reserved (a topic root or the hub's own account)" ;;
  langso-hub) [[ $kind == hub || $action == delete ]] ||
    die "'$device' is reserved (a topic root or the hub's own account)" ;;
  langso-admin) [[ $kind == admin || $action == delete ]] ||
    die "'$device' is reserved (a topic root or the hub's own account)" ;;
  zigbee2mqtt) [[ $kind == zigbee2mqtt || $action != add ]] ||
    die "'zigbee2mqtt' is reserved for --kind zigbee2mqtt" ;;
esac
case $kind in
  "" | ap | sensor | button | speaker | collectd | tasmota | esphome | gateway) ;;
  zigbee2mqtt) [[ $device == zigbee2mqtt ]] || die "the Zigbee2MQTT account is named zigbee2mqtt" ;;
  hub) [[ $device == langso-hub ]] || die "the hub's account is named langso-hub" ;;
  admin) [[ $device == langso-admin ]] || die "the mosquitto_ctrl account is named langso-admin" ;;
  *) die "unknown kind '$kind'" ;;
esac
# install-pi.sh sets the hub's and the admin's password on every run (from hub.env and
# /root/.config/mosquitto_ctrl), so for them adding and re-keying are the same thing.
[[ ($kind == hub || $kind == admin) && $action != delete ]] && action="upsert"

if [[ $action != delete && -z $site ]]; then
  [[ -x $python && -r $config ]] || die "no $config: pass --site SITE"
  site=$("$python" -c 'import sys
from hub.settings import load_settings
print(load_settings(sys.argv[1]).site)' "$config")
fi
if [[ -z $host ]]; then
  host=$(hostname -I 2>/dev/null | awk '{print $1}')
  host=${host:-$(hostname)}
fi

password=""
if [[ $action != delete ]]; then
  if ((password_stdin)); then
    IFS= read -r password || true
    [[ ${#password} -ge 16 && $password != *[[:space:]]* ]] ||
      die "the password on stdin must be at least 16 characters, without spaces"
  else
    # Letters and digits only (no quoting trouble in firmware web forms), 20 of them.
    password=$(head -c 48 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9')
    password=${password:0:20}
  fi
fi

# The broker keeps the file's content in memory and writes it back on each mosquitto_ctrl
# change: stop it first, so that neither overwrites the other, and start it again whatever
# happens below.
stopped=0
if ((restart)) && systemctl is-active --quiet mosquitto.service; then
  systemctl stop mosquitto.service || die "could not stop mosquitto"
  stopped=1
  trap 'systemctl start mosquitto.service ||
    echo "add-device.sh: mosquitto did not start: journalctl -u mosquitto -n 30" >&2' EXIT
fi

# The account's rights, by kind: one role per account, named after it. Dynamic security
# in Mosquitto 2.0 has no %u in its topics, hence a role per account rather than per kind.
# Anything not granted is refused (defaultACLAccess): a denied publish is dropped, a
# denied subscription gets 0x80 in its SUBACK, and nothing is delivered that the account
# may not receive. publishClientSend = may publish; subscribe = may subscribe (Literal:
# exactly this filter; Pattern: this filter or a narrower one); publishClientReceive = may
# be delivered. The password goes through stdin, never argv; the file is replaced in one
# rename with mode 0600, so a half-written file is never read.
# shellcheck disable=SC2016  # Python source: its $ are not shell expansions
editor='import base64, hashlib, json, os, sys, tempfile
path, action, device, kind, site, rounds = sys.argv[1:7]
P = f"village/{site}"
D = device
SEND, RECV, SUB, SUBP = ("publishClientSend", "publishClientReceive",
                         "subscribeLiteral", "subscribePattern")
# Devices write only topics that carry their own name: a stolen AP password cannot report
# for another device, press a button or announce. Status topics (retained, also the
# device will) are under each device tree.
RIGHTS = {
    "ap": [(SEND, f"{P}/ap/{D}/#")],
    "sensor": [(SEND, f"{P}/sensor/{D}/#")],
    "button": [(SEND, f"{P}/button/{D}/#")],
    # A speaker node receives play commands for itself only.
    "speaker": [(SEND, f"{P}/speaker/{D}/status"), (SEND, f"{P}/speaker/{D}/state"),
                (SUB, f"{P}/speaker/{D}/cmd"), (RECV, f"{P}/speaker/{D}/cmd")],
    # collectd MQTT plugin (OpenWrt APs with luci-app-statistics): collectd/<Hostname>/...
    "collectd": [(SEND, f"collectd/{D}/#")],
    # Tasmota: telemetry and will under tele/<Topic>/, command results under stat/<Topic>/,
    # the commands it listens to under cmnd/<Topic>/.
    "tasmota": [(SEND, f"tele/{D}/#"), (SEND, f"stat/{D}/#"),
                (SUBP, f"cmnd/{D}/#"), (RECV, f"cmnd/{D}/#")],
    # ESPHome: <node>/status (will), <node>/[<sub>/](sensor|binary_sensor)/<name>/state,
    # and the command topics of its switches and buttons.
    "esphome": [(SEND, f"{D}/status"), (SEND, f"{D}/sensor/+/state"),
                (SEND, f"{D}/binary_sensor/+/state"), (SEND, f"{D}/+/sensor/+/state"),
                (SEND, f"{D}/+/binary_sensor/+/state"),
                (SUBP, f"{D}/+/+/command"), (RECV, f"{D}/+/+/command")],
    # One bridge per coordinator; its topic root is fixed. Home Assistant discovery and
    # HA birth message, if its HA integration is on.
    "zigbee2mqtt": [(a, t) for t in ("zigbee2mqtt/#", "homeassistant/#")
                    for a in (SEND, SUBP, RECV)],
    # A gateway on the LAN (e.g. the commune warning box) schedules broadcasts on the
    # loudspeakers: no other kind may write cmd/announce. A central emergency arrives
    # through the bridge (bridge-commune.conf.example), which needs no account.
    "gateway": [(SEND, f"{P}/cmd/announce")],
    # The hub (langso run): everything it subscribes to (hub.app.build_router(settings)
    # .filters: the village tree and the roots of the adapters), and what it publishes:
    # its status (retained, also its will), the mirror of announcements, playout and
    # alerts, commands to speaker nodes, Home Assistant discovery.
    "hub": [(a, f) for f in (f"{P}/#", "collectd/#", "tele/#", "zigbee2mqtt/#", "+/status",
                             "+/sensor/+/state", "+/binary_sensor/+/state",
                             "+/+/sensor/+/state", "+/+/binary_sensor/+/state")
            for a in (SUBP, RECV)]
    + [(SEND, f"{P}/{t}") for t in ("hub/#", "announcements/#", "playout/state",
                                     "alerts/#", "speaker/+/cmd")]
    + [(SEND, "homeassistant/#")],
    # mosquitto_ctrl: the plugin control topics only, no village traffic.
    "admin": [(a, "$CONTROL/dynamic-security/#") for a in (SEND, RECV, SUBP)],
}
try:
    with open(path) as f:
        conf = json.load(f)
except FileNotFoundError:
    conf = {"clients": [], "groups": [], "roles": []}
# Every access not granted by a role is refused, delivery included.
conf["defaultACLAccess"] = {SEND: False, RECV: False, "subscribe": False, "unsubscribe": True}
clients = {c["username"]: c for c in conf.setdefault("clients", [])}
old = clients.get(device)
if action == "add" and old is not None:
    sys.exit(f"account {device!r} exists; --rotate gives it a new password")
if action in ("rotate", "delete") and old is None:
    sys.exit(f"no account {device!r} in {path}")
old_kind = (old or {}).get("textname", "")
if action == "rotate" and kind and old_kind and kind != old_kind:
    sys.exit(f"{device!r} is a {old_kind}: --delete it and add it again as a {kind}")
kind = kind or old_kind or "ap"
conf["clients"] = [c for c in conf["clients"] if c["username"] != device]
conf["roles"] = [r for r in conf.setdefault("roles", []) if r["rolename"] != device]
if action != "delete":
    password = sys.stdin.readline().rstrip("\n").encode()
    salt = os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password, salt, int(rounds))
    conf["roles"].append({"rolename": device, "textname": kind, "acls": [
        {"acltype": a, "topic": t, "allow": True, "priority": 0} for a, t in RIGHTS[kind]]})
    # clientid: the account connects with this client id only, so it cannot take over
    # the session of another (langso.conf also sets use_username_as_clientid).
    conf["clients"].append({
        "username": device, "clientid": device, "textname": kind,
        "password": base64.b64encode(digest).decode(), "salt": base64.b64encode(salt).decode(),
        "iterations": int(rounds), "roles": [{"rolename": device, "priority": 0}]})
folder = os.path.dirname(os.path.abspath(path))
fd, tmp = tempfile.mkstemp(dir=folder, prefix=".dynsec.")
with os.fdopen(fd, "w") as f:
    json.dump(conf, f, indent=1, ensure_ascii=False)
    f.write("\n")
os.replace(tmp, path)
print(kind)'
kind=$(printf '%s\n' "$password" |
  python3 -c "$editor" "$dynsec_file" "$action" "$device" "$kind" "$site" "$iterations") ||
  die "$dynsec_file was not changed"
# Mosquitto reads and rewrites the file as the mosquitto user; nobody else should read it.
if getent passwd mosquitto >/dev/null && [[ $(id -u) -eq 0 ]]; then
  chown mosquitto:mosquitto "$dynsec_file"
fi
chmod 0600 "$dynsec_file"
((stopped)) || echo "add-device.sh: the broker uses the change when it next starts" >&2

if [[ $action == delete ]]; then
  echo "Broker account '$device' deleted from $dynsec_file."
  exit 0
fi
prefix="village/$site"
if [[ $kind == hub || $kind == admin ]]; then
  echo "Broker account '$device' set in $dynsec_file ($iterations rounds)."
  exit 0
fi
cat <<MSG
Broker account for '$device' ($kind)
  host:      $host
  port:      $port
  username:  $device
  password:  $password
  client id: $device   (the broker uses the user name as the client id, whatever is set)
MSG
case $kind in
  ap | sensor)
    cat <<MSG
  publish:   $prefix/$kind/$device/state    JSON readings, QoS 1
  status:    $prefix/$kind/$device/status   "online" retained on connect; last will
             "offline", retained, same topic
MSG
    ;;
  button)
    cat <<MSG
  publish:   $prefix/button/$device/event   JSON {"action": "emergency"|"stop"|"announce"}
  status:    $prefix/button/$device/status  "online" retained; last will "offline"
MSG
    ;;
  speaker)
    cat <<MSG
  subscribe: $prefix/speaker/$device/cmd    play commands from the hub, QoS 1
  publish:   $prefix/speaker/$device/state  JSON state, QoS 1, retained
  status:    $prefix/speaker/$device/status "online" retained; last will "offline"
  node:      deploy/node/install-node.sh --id $device (deploy/node/README.md)
MSG
    ;;
  collectd)
    cat <<MSG
  collectd MQTT plugin (luci-app-statistics): Host "$device", Prefix "collectd",
  QoS 1; it may publish collectd/$device/# only.
MSG
    ;;
  tasmota)
    cat <<MSG
  Tasmota: Topic "$device", Full Topic "%prefix%/%topic%/"; it may publish
  tele/$device/# and stat/$device/#, and receives cmnd/$device/#.
MSG
    ;;
  esphome)
    cat <<MSG
  ESPHome mqtt: topic_prefix "$device" (the node name); it may publish
  $device/status and $device/[<sub>/](sensor|binary_sensor)/<name>/state.
MSG
    ;;
  zigbee2mqtt)
    cat <<MSG
  Zigbee2MQTT configuration.yaml: mqtt.base_topic "zigbee2mqtt", user and password
  as above; it may use zigbee2mqtt/# and homeassistant/#.
MSG
    ;;
  gateway)
    cat <<MSG
  publish:   $prefix/cmd/announce   an announcement for the loudspeakers, QoS 1,
             never retained (the hub ignores retained commands)
MSG
    ;;
esac
echo "The password is not stored anywhere else: enter it into the device now."
