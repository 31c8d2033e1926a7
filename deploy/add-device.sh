#!/usr/bin/env bash
# Create the broker account of one device (as root) and print the MQTT settings to
# enter into it. Installed as /usr/local/sbin/langso-add-device by install-pi.sh.
#   add-device.sh [--kind KIND] [--rotate] DEVICE_ID
# KIND: ap (default), sensor, button, speaker, collectd, tasmota, esphome, zigbee2mqtt;
# hub for the hub's own account langso-hub (install-pi.sh sets it from hub.env).
# The user name is the device id: the broker ACL (langso.acl) lets each account write
# only topics that carry its own name, so give every device its own account.
# Options for other layouts and tests:
#   --rotate            give an existing account a new password (the device must be
#                       updated, or it is locked out)
#   --site SITE         village id (default: `site` in /etc/langso/hub.toml)
#   --host HOST         address devices connect to (default: this Pi's LAN address)
#   --port PORT         broker port (default 1883)
#   --passwd-file FILE  (default /etc/mosquitto/langso.passwd)
#   --no-reload         do not ask Mosquitto to re-read its accounts
#   --password-stdin    take the password from the first line of stdin (else: random)
#   --iterations N      PBKDF2-SHA512 rounds of the stored hash (default 10000)
set -euo pipefail

usage() { sed -n '2,20s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }
die() { printf 'add-device.sh: %s\n' "$*" >&2; exit 2; }

kind=ap rotate=0 reload=1 site="" host="" port=1883 password_stdin=0
# mosquitto_passwd 2.0 always writes 101 rounds and has no option for more, but the
# broker reads the count from each line ($7$<rounds>$salt$hash), so this script writes the
# line itself. Each CONNECT with a known user name costs the single-threaded broker one
# hash: 10,000 rounds measured 8 ms per CONNECT on an x86 core (0.3 ms at 101), a few
# times that on a Pi. The passwords made here are random (20 or 32 letters and digits,
# over 100 bits), which is what keeps a stolen file from being cracked; the rounds slow
# down a guess at a password a person chose.
iterations=10000
passwd_file=/etc/mosquitto/langso.passwd
config=/etc/langso/hub.toml
python=/opt/langso/venv/bin/python
device=""
while (($#)); do
  case $1 in
    --kind) kind=${2:?--kind needs a value}; shift 2 ;;
    --rotate) rotate=1; shift ;;
    --site) site=${2:?--site needs a value}; shift 2 ;;
    --host) host=${2:?--host needs a value}; shift 2 ;;
    --port) port=${2:?--port needs a value}; shift 2 ;;
    --passwd-file) passwd_file=${2:?--passwd-file needs a value}; shift 2 ;;
    --no-reload) reload=0; shift ;;
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
# wildcards + and # and the level separator / out of the ACL's %u substitution.
[[ $device =~ ^[a-z0-9][a-z0-9-]{0,62}$ ]] ||
  die "'$device': use lower-case letters, digits and '-' (e.g. ap-nha-van-hoa)"
# Names of topic roots and of the hub's own accounts: the ESPHome patterns (%u/...)
# would give such an account another source's tree.
case $device in
  village | all | homeassistant | collectd | tele | stat | cmnd | commune-gateway)
    die "'$device' is reserved (a topic root or the hub's own account)" ;;
  langso-hub) [[ $kind == hub ]] || die "'$device' is reserved (a topic root or the hub's own account)" ;;
  zigbee2mqtt) [[ $kind == zigbee2mqtt ]] || die "'zigbee2mqtt' is reserved for --kind zigbee2mqtt" ;;
esac
case $kind in
  ap | sensor | button | speaker | collectd | tasmota | esphome) ;;
  zigbee2mqtt) [[ $device == zigbee2mqtt ]] || die "the Zigbee2MQTT account is named zigbee2mqtt" ;;
  hub) [[ $device == langso-hub ]] || die "the hub's account is named langso-hub" ;;
  *) die "unknown kind '$kind'" ;;
esac

if [[ -z $site ]]; then
  [[ -x $python && -r $config ]] || die "no $config: pass --site SITE"
  site=$("$python" -c 'import sys
from hub.settings import load_settings
print(load_settings(sys.argv[1]).site)' "$config")
fi
if [[ -z $host ]]; then
  host=$(hostname -I 2>/dev/null | awk '{print $1}')
  host=${host:-$(hostname)}
fi

# (The id is checked above, so it is safe inside a regular expression.)
if [[ -e $passwd_file ]] && grep -q "^$device:" "$passwd_file"; then
  ((rotate)) || die "account '$device' exists; --rotate gives it a new password"
fi

if ((password_stdin)); then
  IFS= read -r password || true
  [[ ${#password} -ge 16 && $password != *[:[:space:]]* ]] ||
    die "the password on stdin must be at least 16 characters, without spaces or ':'"
else
  # Letters and digits only (no quoting trouble in firmware web forms), 20 of them.
  password=$(head -c 48 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9')
  password=${password:0:20}
fi
# The account's line, hashed as Mosquitto's sha512-pbkdf2 ($7$) with $iterations rounds,
# replaces any line of the same user; the file is replaced in one rename (0600, so a
# half-written file is never read). The password goes through stdin, never argv.
# shellcheck disable=SC2016  # Python source: its $ are not shell expansions
hasher='import base64, hashlib, os, sys, tempfile
path, user, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
password = sys.stdin.readline().rstrip("\n").encode()
salt = os.urandom(12)
digest = hashlib.pbkdf2_hmac("sha512", password, salt, rounds)
b64 = lambda b: base64.b64encode(b).decode()
entry = f"{user}:$7${rounds}${b64(salt)}${b64(digest)}\n"
try:
    with open(path) as f:
        lines = [line for line in f if line.split(":", 1)[0] != user]
except FileNotFoundError:
    lines = []
fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".passwd.")
with os.fdopen(fd, "w") as f:
    f.writelines([*lines, entry])
os.replace(tmp, path)'
printf '%s\n' "$password" | python3 -c "$hasher" "$passwd_file" "$device" "$iterations" ||
  die "could not write $passwd_file"
# Mosquitto reads the file as the mosquitto user after a reload; nobody else should.
if getent passwd mosquitto >/dev/null && [[ $(id -u) -eq 0 ]]; then
  chown mosquitto:mosquitto "$passwd_file"
fi
chmod 0600 "$passwd_file"

if ((reload)); then
  # SIGHUP: Mosquitto re-reads accounts and ACL without dropping connected clients.
  systemctl reload mosquitto.service ||
    echo "add-device.sh: could not reload mosquitto; restart it to use the new account" >&2
fi

prefix="village/$site"
if [[ $kind == hub ]]; then
  echo "Broker account '$device' set in $passwd_file ($iterations rounds)."
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
  status:    $prefix/speaker/$device/status "online" retained; last will "offline"
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
esac
echo "The password is not stored anywhere else: enter it into the device now."
