#!/usr/bin/env bash
# Install a speaker cluster's receiver (as root, on the cluster's board: Raspberry Pi OS Lite
# on a Pi Zero 2 W, or any Debian board with a sound output): snapclient, and the node agent
# from this repository in a venv, with their systemd units.
#   install-node.sh --id ID --hub HOST --amp-pin PIN [options]
#   --id ID              the cluster's device id (its MQTT account and Snapcast --hostID),
#                        e.g. cum-xom-tay; made on the hub with
#                        `sudo langso-add-device --kind speaker ID`
#   --hub HOST           the hub's address (its broker and its snapserver)
#   --amp-pin PIN        BCM pin of the amplifier's relay
#   --site SITE          the village id (default thon-dong)
#   --password-stdin     the MQTT password from the first line of stdin (else: asked)
#   --mqtt-port PORT     the broker's port (default 1883)
#   --active-low         the relay board switches on a low level
#   --max-on-s S         hard cap on one switch-on of the amplifier (default 1800)
#   --mixer CONTROL      ALSA mixer control the hub's volume sets (e.g. PCM); default none
#   --soundcard NAME     snapclient's sound card (default: the system's default)
#   --repo DIR           this repository (default: the one this script is in)
# Run it again to change a setting: it rewrites the config and restarts both services.
set -euo pipefail

usage() { sed -n '2,20s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }
die() { printf 'install-node.sh: %s\n' "$*" >&2; exit 2; }

id="" hub="" pin="" site=thon-dong port=1883 active_high=true max_on=1800 mixer=""
soundcard="" password_stdin=0
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
while (($#)); do
  case $1 in
    --id) id=${2:?--id needs a value}; shift 2 ;;
    --hub) hub=${2:?--hub needs a value}; shift 2 ;;
    --amp-pin) pin=${2:?--amp-pin needs a value}; shift 2 ;;
    --site) site=${2:?--site needs a value}; shift 2 ;;
    --mqtt-port) port=${2:?--mqtt-port needs a value}; shift 2 ;;
    --password-stdin) password_stdin=1; shift ;;
    --active-low) active_high=false; shift ;;
    --max-on-s) max_on=${2:?--max-on-s needs a value}; shift 2 ;;
    --mixer) mixer=${2:?--mixer needs a value}; shift 2 ;;
    --soundcard) soundcard=${2:?--soundcard needs a value}; shift 2 ;;
    --repo) repo=${2:?--repo needs a value}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument $1" ;;
  esac
done
[[ $id =~ ^[a-z0-9][a-z0-9_-]{0,62}$ ]] || die "--id: lower-case letters, digits, - and _"
[[ -n $hub ]] || die "--hub missing"
if ! [[ $pin =~ ^[0-9]+$ ]] || ((pin > 27)); then die "--amp-pin: a BCM pin number 0..27"; fi
[[ $site =~ ^[a-z0-9][a-z0-9-]{0,62}$ ]] || die "--site: lower-case letters, digits and -"
[[ $port =~ ^[0-9]+$ ]] || die "--mqtt-port: a number"
[[ $max_on =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--max-on-s: a number of seconds"
[[ -z $mixer || $mixer =~ ^[A-Za-z0-9\ _-]+$ ]] || die "--mixer: an ALSA control name"
[[ -f $repo/devices/node/agent.py ]] || die "--repo: $repo is not the Làng Số repository"
((EUID == 0)) || die "run as root (sudo)"

if ((password_stdin)); then
  IFS= read -r password
else
  IFS= read -rsp "MQTT password of $id (from langso-add-device on the hub): " password
  echo
fi
[[ -n $password ]] || die "an empty password"

echo "== packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q snapclient python3-venv python3-lgpio alsa-utils

echo "== snapclient: to the hub, as $id (its Snapcast client id is the device id)"
opts="--host $hub --hostID $id"
[[ -z $soundcard ]] || opts+=" --soundcard $soundcard"
cat >/etc/default/snapclient <<EOF
# Written by install-node.sh. snapclient.service reads SNAPCLIENT_OPTS.
START_SNAPCLIENT=true
SNAPCLIENT_OPTS="$opts"
EOF

echo "== the node agent"
id -u langso-node >/dev/null 2>&1 ||
  useradd --system --home /opt/langso-node --shell /usr/sbin/nologin langso-node
getent group gpio >/dev/null && usermod -a -G gpio langso-node
install -d -m 0755 /opt/langso-node /opt/langso-node/app
# Only the devices package: the agent needs gpiozero and paho-mqtt, not the hub.
rm -rf /opt/langso-node/app/devices
cp -r "$repo/devices" /opt/langso-node/app/
find /opt/langso-node/app -name __pycache__ -prune -exec rm -rf {} +
# --system-site-packages: Debian's python3-lgpio is gpiozero's pin library on a Pi 5 too.
[[ -x /opt/langso-node/venv/bin/python ]] ||
  python3 -m venv --system-site-packages /opt/langso-node/venv
/opt/langso-node/venv/bin/pip install -q "gpiozero>=2.0" "paho-mqtt>=2.1,<3"

install -d -m 0750 -g langso-node /etc/langso-node
umask 077
printf '%s\n' "$password" >/etc/langso-node/mqtt-password
chgrp langso-node /etc/langso-node/mqtt-password
chmod 0640 /etc/langso-node/mqtt-password
{
  echo "# Written by install-node.sh; fields: devices/node/agent.py NodeConfig."
  echo "id = \"$id\""
  echo "site = \"$site\""
  echo "amp_pin = $pin"
  echo "amp_active_high = $active_high"
  echo "max_on_s = $max_on"
  echo "mqtt_host = \"$hub\""
  echo "mqtt_port = $port"
  echo "username = \"$id\""
  echo "password_file = \"/etc/langso-node/mqtt-password\""
  [[ -z $mixer ]] || echo "mixer = \"$mixer\""
} >/etc/langso-node/node.toml
chgrp langso-node /etc/langso-node/node.toml
chmod 0640 /etc/langso-node/node.toml
(cd /opt/langso-node/app &&
  runuser -u langso-node -- /opt/langso-node/venv/bin/python -m devices.node \
    --config /etc/langso-node/node.toml --check)

install -m 0644 "$repo/deploy/node/langso-node.service" /etc/systemd/system/langso-node.service
systemctl daemon-reload
systemctl enable --now snapclient.service langso-node.service
systemctl restart snapclient.service langso-node.service

cat <<MSG
Done. On the hub: the cluster appears on the devices page as $id (kind speaker) once the
agent connects; give it its name and its zone there. Check here with:
  systemctl status snapclient langso-node
  journalctl -u langso-node -f
MSG
