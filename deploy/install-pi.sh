#!/usr/bin/env bash
# Install or upgrade Làng Số Hub on a Raspberry Pi (Raspberry Pi OS Bookworm, arm64 or
# armhf) or Debian 12, from this checkout, as root:
#     sudo deploy/install-pi.sh            install / upgrade, and (re)start the hub
#     deploy/install-pi.sh --dry-run       print what it would do, change nothing
# Options:
#   --no-start        install and enable everything, start and restart nothing (an image
#                     prepared for another Pi, a machine without systemd running, a test)
#   --wheelhouse DIR  install the Python packages from the wheels in DIR only, no internet
#                     (make DIR on a machine with internet, same CPU: see deploy/README.md)
#   --rtc ds3231      a DS3231 clock board is fitted: turn on its overlay (Pi only; reboot)
#   --clusters        remote speaker clusters over the village wifi: snapserver with the
#                     shipped config (then [clusters] enabled = true; deploy/node/README.md)
#   --https           serve the pages over https:// with a certificate made here for this
#                     Pi's names and addresses (a phone gives the microphone to https only)
# Safe to run again: an upgrade reinstalls the code and the systemd units and keeps
# /etc/langso (settings, broker password), the data in /var/lib/langso, the broker
# accounts, and any broker file edited here. deploy/uninstall-pi.sh removes it.
set -euo pipefail

usage() {
  sed -n '2,20s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}
bad_usage() { echo "install-pi.sh: $*" >&2; usage >&2; exit 2; }

DRY_RUN=0 NO_START=0 WHEELHOUSE="" RTC="" CLUSTERS=0 HTTPS=0
while (($#)); do
  case $1 in
    -n | --dry-run) DRY_RUN=1; shift ;;
    --no-start) NO_START=1; shift ;;
    --wheelhouse)
      [[ -n ${2:-} ]] || bad_usage "--wheelhouse needs a folder of wheels"
      WHEELHOUSE=$2; shift 2 ;;
    --rtc)
      [[ ${2:-} == ds3231 ]] || bad_usage "--rtc: the supported clock board is ds3231"
      RTC=$2; shift 2 ;;
    --clusters) CLUSTERS=1; shift ;;
    --https) HTTPS=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) bad_usage "unknown option $1" ;;
  esac
done
if [[ -n $WHEELHOUSE ]]; then
  if [[ ! -d $WHEELHOUSE ]] || ! compgen -G "$WHEELHOUSE/*.whl" >/dev/null; then
    bad_usage "--wheelhouse $WHEELHOUSE: no *.whl files there"
  fi
  WHEELHOUSE=$(cd "$WHEELHOUSE" && pwd)
fi

CHECKOUT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Where things go. The systemd units, the Mosquitto files and add-device.sh name the
# same paths: change them together.
PREFIX=/opt/langso
VENV=$PREFIX/venv
ETC=/etc/langso
CONFIG=$ETC/hub.toml
ENV_FILE=$ETC/hub.env
SUMS=$ETC/installed-files.sha256
DATA=/var/lib/langso
UNIT_DIR=/etc/systemd/system
# Every unit shipped in deploy/systemd (the hub, its backup, its safe state...), so a unit
# added there is installed without touching this script.
mapfile -t UNITS < <(cd "$CHECKOUT/deploy/systemd" && compgen -G 'langso-*.service' | sort &&
  compgen -G 'langso-*.timer' | sort)
((${#UNITS[@]})) || { echo "install-pi.sh: no units in $CHECKOUT/deploy/systemd" >&2; exit 1; }
# The distribution's Python, never one from root's PATH (a pyenv shim in /root would give
# a venv the langso user cannot run).
SYS_PYTHON=/usr/bin/python3
MOSQ_CONF=/etc/mosquitto/conf.d/langso.conf
# The broker's accounts and their rights (Mosquitto's dynamic-security plugin, which
# rewrites it as the mosquitto user, in the directory Debian gives that user).
MOSQ_DYNSEC=/var/lib/mosquitto/dynamic-security.json
MOSQ_OLD_PASSWD=/etc/mosquitto/langso.passwd
# mosquitto_ctrl's default options for root (its admin account, so that
# `sudo mosquitto_ctrl dynsec ...` needs no password on its command line).
CTRL_CONF=/root/.config/mosquitto_ctrl
ADD_DEVICE=/usr/local/sbin/langso-add-device
HUB_USER=langso
MQTT_USER=langso-hub
MQTT_ADMIN=langso-admin
# What the hub runs (espeak-ng, ffmpeg, aplay, sox), the broker and its clients, the
# venv, sqlite3 for the nightly backup, CA certificates for a TLS bridge.
PACKAGES=(mosquitto mosquitto-clients espeak-ng ffmpeg alsa-utils sox python3-venv
  sqlite3 ca-certificates)

say() { printf '\n==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
warn() { printf '    WARNING: %s\n' "$*" >&2; }
die() { printf 'install-pi.sh: %s\n' "$*" >&2; exit 1; }

# Every change goes through run/write_file/install_file, so --dry-run prints the whole
# plan and touches nothing; only read-only checks (getent, dpkg-query, test) run.
run() {
  if ((DRY_RUN)); then
    local cmd
    cmd=$(printf '%q ' "$@")
    note "would run: ${cmd% }"
  else
    "$@"
  fi
}

# write_file DEST MODE OWNER:GROUP < content. Written beside DEST and renamed, so a
# reader never sees half a file and a secret never exists with looser permissions
# (mktemp creates 0600). In a dry run the content (maybe a password) is not shown.
write_file() {
  local dest=$1 mode=$2 owner=$3 tmp
  if ((DRY_RUN)); then
    cat >/dev/null
    note "would write $dest ($mode $owner)"
    return
  fi
  tmp=$(mktemp "$dest.XXXXXX")
  cat >"$tmp"
  chown "$owner" "$tmp"
  chmod "$mode" "$tmp"
  mv -f "$tmp" "$dest"
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

# install_managed SRC DEST MODE OWNER:GROUP: a file we ship but the admin may edit
# (Debian's conffile rule). Replaced when it is still as we last installed it;
# an edited copy is kept and the new version put beside it as DEST.dist.
install_managed() {
  local src=$1 dest=$2 mode=$3 owner=$4 recorded=""
  if ((DRY_RUN)); then
    note "would install $dest (from ${src#"$CHECKOUT"/}; an edited copy is kept, new one as $dest.dist)"
    return
  fi
  if [[ -e $dest ]]; then
    if cmp -s "$src" "$dest"; then
      chown "$owner" "$dest"
      chmod "$mode" "$dest"
      return
    fi
    [[ -f $SUMS ]] && recorded=$(awk -v f="$dest" '$2 == f { print $1 }' "$SUMS")
    if [[ $(sha "$dest") != "$recorded" ]]; then
      install -m "$mode" -o "${owner%%:*}" -g "${owner##*:}" "$src" "$dest.dist"
      warn "$dest was edited here: kept. Compare it with $dest.dist and merge."
      return
    fi
  fi
  install -m "$mode" -o "${owner%%:*}" -g "${owner##*:}" "$src" "$dest"
  touch "$SUMS"
  { awk -v f="$dest" '$2 != f' "$SUMS"; printf '%s %s\n' "$(sha "$dest")" "$dest"; } \
    >"$SUMS.new"
  mv -f "$SUMS.new" "$SUMS"
}

# A random password of letters and digits (no quoting trouble in mosquitto_passwd or
# an EnvironmentFile) that starts with a letter: LANGSO_* values are read as JSON
# when they parse, so an all-digit password would turn into a number.
gen_password() {
  local p
  p=$(head -c 64 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9')
  while [[ ${p:0:1} == [0-9] ]]; do p=${p:1}; done
  printf '%s' "${p:0:$1}"
}

as_hub_user() {
  # cd: the checkout may sit in a home directory the langso user cannot enter.
  (cd "$DATA" && runuser -u "$HUB_USER" -- env LANGSO_CONFIG="$CONFIG" "$@")
}

installed() { [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]; }
# A package this distribution offers (Raspberry Pi OS and Debian both have fake-hwclock).
available() { [[ $(apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: //p') =~ ^[0-9] ]]; }

# ---- 0. Preflight ---------------------------------------------------------------------
((DRY_RUN)) && echo "Dry run: nothing is changed; this is what an install would do."
if ((!DRY_RUN)) && [[ $(id -u) -ne 0 ]]; then
  die "run as root: sudo $0 (or --dry-run to see the plan)"
fi
SYSTEMD=1
if [[ ! -d /run/systemd/system ]]; then
  SYSTEMD=0
  ((DRY_RUN || NO_START)) ||
    die "systemd is not running here (PID 1): the hub is installed as systemd units (--no-start installs them without starting anything)"
  note "(systemd is not running on this machine: units are installed and enabled, not started)"
fi
IS_PI=0
grep -qs "Raspberry Pi" /proc/device-tree/model && IS_PI=1
# shellcheck source=/dev/null
codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-unknown}")
[[ $codename == bookworm ]] || warn "tested on Debian 12 / Raspberry Pi OS Bookworm, this is '$codename'"

# ---- 1. System packages ---------------------------------------------------------------
say "System packages"
packages=("${PACKAGES[@]}")
# A Pi has no real-time clock: without an NTP client it boots in the past and
# schedules wait. Add systemd-timesyncd unless another NTP client is installed
# (they conflict).
if ! installed systemd-timesyncd && ! installed chrony && ! installed ntpsec && ! installed ntp; then
  packages+=(systemd-timesyncd)
fi
# After a power cut without internet a Pi starts at 1970 (or its build date); fake-hwclock
# saves the time every hour and at shutdown and sets it back at boot: the clock then never
# goes back behind the last time the Pi ran. Not on other machines: they have a clock.
if ((IS_PI)) && available fake-hwclock; then
  packages+=(fake-hwclock)
fi
((CLUSTERS)) && packages+=(snapserver)
((HTTPS)) && packages+=(openssl)
run bash "$CHECKOUT/deploy/install-system-packages.sh" "${packages[@]}"

# ---- 2. Service account and directories -----------------------------------------------
say "User $HUB_USER, directories"
if getent passwd "$HUB_USER" >/dev/null; then
  note "user $HUB_USER exists"
else
  run useradd --system --user-group --home-dir "$DATA" --no-create-home \
    --shell /usr/sbin/nologin --comment "Lang So Hub" "$HUB_USER"
fi
# gpio: the relays and buttons (Raspberry Pi OS gives /dev/gpiochip* to this group);
# audio: ALSA devices. Plain Debian has no gpio group; GPIO then needs a udev rule.
for group in gpio audio; do
  if getent group "$group" >/dev/null; then
    run usermod -a -G "$group" "$HUB_USER"
  else
    note "no group $group here: skipped"
  fi
done
run install -d -m 0755 -o root -g root "$PREFIX"
# /etc/langso: the hub's group may read the settings, others may not (hub.env inside
# is root-only: systemd reads it before dropping privileges).
run install -d -m 0750 -o root -g "$HUB_USER" "$ETC"
run install -d -m 0750 -o "$HUB_USER" -g "$HUB_USER" "$DATA" "$DATA/backups"

# ---- 3. The code: a private venv in /opt/langso/venv -----------------------------------
say "Python package into $VENV"
# A venv made by an older Python (after a distribution upgrade) no longer starts:
# rebuild it then.
if [[ -x $VENV/bin/python ]] && "$VENV/bin/python" -c '' 2>/dev/null; then
  note "venv exists: upgrading it"
else
  run "$SYS_PYTHON" -m venv --clear "$VENV"
fi
pip_from=()
if [[ -n $WHEELHOUSE ]]; then
  # Offline: these wheels only (and the build backend from them), no index at all.
  pip_from=(--no-index --find-links "$WHEELHOUSE")
  note "packages from $WHEELHOUSE only (no internet)"
else
  run "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
# pip builds in the source tree (build/, *.egg-info): build from a copy, so root never
# leaves files in a checkout that belongs to someone else.
if ((DRY_RUN)); then
  note "would copy $CHECKOUT (without .git, .venv, var) to a temporary directory"
  run "$VENV/bin/python" -m pip install --quiet "${pip_from[@]}" "<copy of $CHECKOUT>"
else
  src=$(mktemp -d)
  trap 'rm -rf "$src"' EXIT
  tar -C "$CHECKOUT" --exclude=./.git --exclude=./.venv --exclude=./var --exclude=./build \
    --exclude='*.egg-info' --exclude=__pycache__ --exclude=./.mypy_cache \
    --exclude=./.pytest_cache --exclude=./.ruff_cache --exclude=./test-artifacts \
    -cf - . | tar -C "$src" -xf -
  # The running hub keeps its loaded modules until the restart in step 7.
  run "$VENV/bin/python" -m pip install --quiet "${pip_from[@]}" "$src"
fi
run install -m 0644 "$CHECKOUT/deploy/README.md" "$PREFIX/README.md"
run install -m 0755 "$CHECKOUT/deploy/add-device.sh" "$ADD_DEVICE"

# ---- 4. Settings ------------------------------------------------------------------------
say "Settings $CONFIG"
if [[ -e $CONFIG ]]; then
  note "$CONFIG exists: kept (compare with $CHECKOUT/config/hub.toml for new keys)"
  run chown "root:$HUB_USER" "$CONFIG"
  run chmod 0640 "$CONFIG"
else
  # The documented defaults, with the two values a Pi needs: absolute data directory
  # (the units and the backup use it) and the web page reachable from the village LAN.
  sed -e "s|^data_dir = .*|data_dir = \"$DATA\"|" \
    -e '/^\[http\]/,/^\[/ s|^host = .*|host = "0.0.0.0"|' \
    "$CHECKOUT/config/hub.toml" | write_file "$CONFIG" 0640 "root:$HUB_USER"
  note "edit it for this village (site, timezone, GPIO), then: sudo systemctl restart langso-hub"
fi
# https (--https): a certificate of its own for the Pi's host name, name.local and its
# addresses, ten years, made once (a phone asks once to trust it); the settings name it.
TLS=$ETC/tls
if ((HTTPS)); then
  if [[ -e $TLS/hub.crt ]]; then
    note "$TLS/hub.crt exists: kept"
  else
    host=$(hostname)
    san="DNS:$host,DNS:$host.local,DNS:localhost,IP:127.0.0.1"
    for ip in $(hostname -I 2>/dev/null); do san+=",IP:$ip"; done
    run install -d -m 0750 -o root -g "$HUB_USER" "$TLS"
    run openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
      -subj "/CN=$host (Làng Số Hub)" -addext "subjectAltName=$san" \
      -keyout "$TLS/hub.key" -out "$TLS/hub.crt"
    run chown "root:$HUB_USER" "$TLS/hub.key" "$TLS/hub.crt"
    run chmod 0640 "$TLS/hub.key"
  fi
  if ((DRY_RUN)) || ! grep -q '^cert_file' "$CONFIG"; then
    # Into the [http] section, after its port line.
    run sed -i "/^\[http\]/,/^\[/ s|^port = .*|&\ncert_file = \"$TLS/hub.crt\"\nkey_file = \"$TLS/hub.key\"|" "$CONFIG"
  fi
fi
# The ready-made event rules beside it (rules_file is relative to hub.toml's folder).
if [[ -e $ETC/rules.toml ]]; then
  note "$ETC/rules.toml exists: kept"
else
  run install -m 0640 -o root -g "$HUB_USER" "$CHECKOUT/config/rules.toml" "$ETC/rules.toml"
fi
# A key the new version no longer knows stops here, with the old hub still running.
if ((DRY_RUN)); then
  run "$VENV/bin/langso" check-config "$CONFIG"
  # No venv to ask yet: read the site straight from the file.
  cfg=$CONFIG
  [[ -r $cfg ]] || cfg=$CHECKOUT/config/hub.toml
  site=$(sed -n 's/^site *= *"\([a-z0-9-]*\)".*/\1/p' "$cfg")
  http_host=0.0.0.0 http_port=8080 scheme=http
  ((HTTPS)) && scheme=https
else
  as_hub_user "$VENV/bin/langso" check-config "$CONFIG" >/dev/null ||
    die "fix $CONFIG (the line above names the key), then run this again"
  read -r site http_host http_port scheme < <(as_hub_user "$VENV/bin/python" -c \
    'from hub.settings import load_settings; s = load_settings("'"$CONFIG"'")
print(s.site, s.http.host, s.http.port, s.http.scheme)')
  [[ -n ${site:-} ]] || die "could not read the settings from $CONFIG"
fi
note "site: $site"

# ---- 5. Broker: accounts, ACL, limits --------------------------------------------------
say "Mosquitto ($MOSQ_CONF, $MOSQ_DYNSEC)"
# The hub's broker password lives only in the root-only EnvironmentFile that systemd
# reads before it drops to the langso user; kept across upgrades.
hub_password=""
if [[ -r $ENV_FILE ]]; then
  hub_password=$(sed -n 's/^LANGSO_MQTT__PASSWORD=//p' "$ENV_FILE")
fi
pi_note=""
((IS_PI)) || pi_note="GPIOZERO_PIN_FACTORY=mock"
if [[ -n $hub_password ]]; then
  # Kept as it is: the admin may have added settings to it.
  note "$ENV_FILE exists: the hub keeps its broker password"
  run chown root:root "$ENV_FILE"
  run chmod 0600 "$ENV_FILE"
else
  ((DRY_RUN)) || hub_password=$(gen_password 32)
  {
    echo "# Làng Số Hub: settings kept out of hub.toml (written by install-pi.sh; 0600 root,"
    echo "# systemd reads it before it drops to the langso user). Any LANGSO_* key works here."
    echo "LANGSO_MQTT__USERNAME=$MQTT_USER"
    echo "LANGSO_MQTT__PASSWORD=$hub_password"
    echo "# Off a Raspberry Pi, gpiozero's mock pins stand in for the relays:"
    echo "${pi_note:-#GPIOZERO_PIN_FACTORY=mock}"
  } | write_file "$ENV_FILE" 0600 root:root
fi
# The accounts file is edited with the broker stopped: the plugin keeps it in memory and
# would write its own copy back over ours. Started again below with the new settings.
# With --no-start the broker is left as it is and reads the file when it next starts.
((NO_START)) || run systemctl stop mosquitto.service
# Always set the hub's password from hub.env, so the two can never disagree, and bring its
# rights up to date. add-device.sh hashes it with more PBKDF2 rounds than mosquitto_ctrl
# can (101), binds the account to the client id langso-hub, and takes the password on
# stdin (never on a command line).
if ((DRY_RUN)); then
  note "would run: $ADD_DEVICE --kind hub --password-stdin --dynsec-file $MOSQ_DYNSEC $MQTT_USER"
else
  printf '%s\n' "$hub_password" |
    "$ADD_DEVICE" --kind hub --password-stdin --no-restart --site "$site" \
      --dynsec-file "$MOSQ_DYNSEC" "$MQTT_USER"
fi
# The admin account of mosquitto_ctrl (disable, inspect or list accounts while the broker
# runs: `sudo mosquitto_ctrl dynsec disableClient ap-xom-1`). Its rights are the plugin's
# control topics only; its password lives in root's mosquitto_ctrl options (0600), kept
# across upgrades.
admin_mqtt_password=""
if [[ -r $CTRL_CONF ]]; then
  admin_mqtt_password=$(sed -n 's/^-P //p' "$CTRL_CONF")
fi
if ((DRY_RUN)); then
  if [[ -n $admin_mqtt_password ]]; then
    note "$CTRL_CONF exists: mosquitto_ctrl keeps its account"
  else
    note "would write $CTRL_CONF (0600 root:root)"
  fi
  note "would run: $ADD_DEVICE --kind admin --password-stdin --dynsec-file $MOSQ_DYNSEC $MQTT_ADMIN"
else
  if [[ -z $admin_mqtt_password ]]; then
    admin_mqtt_password=$(gen_password 32)
    install -d -m 0700 -o root -g root "$(dirname "$CTRL_CONF")"
    printf -- '-h 127.0.0.1\n-p 1883\n-u %s\n-P %s\n' "$MQTT_ADMIN" "$admin_mqtt_password" |
      write_file "$CTRL_CONF" 0600 root:root
  fi
  printf '%s\n' "$admin_mqtt_password" |
    "$ADD_DEVICE" --kind admin --password-stdin --no-restart --site "$site" \
      --dynsec-file "$MOSQ_DYNSEC" "$MQTT_ADMIN"
fi
# Hashes and rights: read and rewritten by Mosquitto (as the mosquitto user), nobody else.
run chown mosquitto:mosquitto "$MOSQ_DYNSEC"
run chmod 0600 "$MOSQ_DYNSEC"
if [[ -e $MOSQ_OLD_PASSWD ]]; then
  warn "$MOSQ_OLD_PASSWD (and langso.acl) are no longer read: add each device again" \
    "with sudo $ADD_DEVICE [--kind KIND] DEVICE_ID, enter its new password, then delete them"
fi
install_managed "$CHECKOUT/deploy/mosquitto/langso.conf" "$MOSQ_CONF" 0644 root:root
# A restart, not a reload: listeners and limits are only read at start.
run systemctl enable mosquitto.service
if ((NO_START)); then
  note "--no-start: the broker uses these settings and accounts when it next starts"
else
  run systemctl restart mosquitto.service
  if ((!DRY_RUN)) && ! systemctl is-active --quiet mosquitto.service; then
    die "mosquitto did not start: journalctl -u mosquitto -n 30 and /var/log/mosquitto/mosquitto.log"
  fi
fi

# ---- 6. First admin account --------------------------------------------------------------
say "Admin account"
admin_password=""
if ((DRY_RUN)); then
  note "would create user 'admin' (role admin) with a random password printed once," \
    "unless it exists: langso user add admin --role admin --password-stdin"
elif as_hub_user "$VENV/bin/langso" user exists admin; then
  note "admin exists: kept"
else
  admin_password=$(gen_password 16)
  printf '%s\n' "$admin_password" |
    as_hub_user "$VENV/bin/langso" user add admin --role admin --password-stdin >/dev/null
fi

# ---- 7. systemd units --------------------------------------------------------------------
say "systemd units (${UNITS[*]})"
# Replaced on every install; local changes belong in `systemctl edit <unit>` drop-ins.
enable=()
for unit in "${UNITS[@]}"; do
  run install -m 0644 "$CHECKOUT/deploy/systemd/$unit" "$UNIT_DIR/$unit"
  # Enabled when it says where it belongs ([Install]); a unit without one runs only when
  # another pulls it in (e.g. the safe state by OnFailure=, the backup by its timer).
  grep -q '^\[Install\]' "$CHECKOUT/deploy/systemd/$unit" && enable+=("$unit")
done
# Units of an older version that this one no longer ships.
for old in "$UNIT_DIR"/langso-*.service "$UNIT_DIR"/langso-*.timer; do
  [[ -e $old ]] || continue
  name=${old##*/}
  [[ " ${UNITS[*]} " == *" $name "* ]] && continue
  ((SYSTEMD)) && run systemctl stop "$name"
  run systemctl disable "$name"
  run rm -f "$old"
done
# systemctl enable works on the files alone, with or without a running systemd.
((SYSTEMD)) && run systemctl daemon-reload
((${#enable[@]})) && run systemctl enable "${enable[@]}"
if ((NO_START)); then
  note "--no-start: start them with sudo systemctl restart mosquitto langso-hub" \
    "&& sudo systemctl start langso-backup.timer"
else
  # restart also starts it the first time, and loads the new code on an upgrade.
  run systemctl restart langso-hub.service
  run systemctl start langso-backup.timer
fi

# ---- 8. Clock -----------------------------------------------------------------------------
say "Clock"
# No real-time clock on a Pi: after a power cut it starts at the last saved time until
# NTP answers. The hub holds schedules back until the clock is synchronised, so a
# village without internet needs an NTP server on the LAN, fake-hwclock as the floor
# (installed above on a Pi) or a DS3231 clock board (--rtc ds3231).
if ((NO_START)); then
  note "--no-start: turn NTP on with sudo timedatectl set-ntp true"
else
  run timedatectl set-ntp true || warn "timedatectl set-ntp true failed: install systemd-timesyncd"
fi
reboot_note=""
if [[ -n $RTC ]]; then
  boot_config=""
  for f in /boot/firmware/config.txt /boot/config.txt; do
    [[ -f $f ]] && { boot_config=$f; break; }
  done
  overlay="dtoverlay=i2c-rtc,$RTC"
  if ((!IS_PI)) || [[ -z $boot_config ]]; then
    note "--rtc $RTC: not a Raspberry Pi (no /boot/firmware/config.txt): skipped"
  elif grep -qxF "$overlay" "$boot_config"; then
    note "$boot_config already has $overlay"
  else
    # The kernel's rtc-ds1307 driver then sets the system clock from the board at boot,
    # before the hub starts; fake-hwclock stays as the floor (it never sets the clock back).
    # Appended in place: /boot/firmware is a FAT file system (no owners, no modes).
    if ((DRY_RUN)); then
      note "would add $overlay to $boot_config"
    else
      printf '\n# Làng Số Hub: DS3231 clock board (install-pi.sh --rtc)\n%s\n' "$overlay" \
        >>"$boot_config"
    fi
    reboot_note="$overlay added to $boot_config: reboot the Pi (sudo reboot) to use the clock board"
  fi
fi

# ---- 8b. Speaker clusters (--clusters) ----------------------------------------------------
if ((CLUSTERS)); then
  say "Speaker clusters (snapserver)"
  # One stream the hub feeds over TCP, control on 127.0.0.1 only (deploy/node/README.md).
  install_managed "$CHECKOUT/deploy/node/snapserver.conf" /etc/snapserver.conf 0644 root:root
  run systemctl enable snapserver.service
  ((NO_START)) || run systemctl restart snapserver.service
  note "set [clusters] enabled = true in $CONFIG, then add each cluster: deploy/node/README.md"
fi

# ---- 9. Check and summary -----------------------------------------------------------------
[[ $http_host == 0.0.0.0 || $http_host == :: ]] && probe=127.0.0.1 || probe=$http_host
if ((!DRY_RUN && !NO_START)); then
  # The hub answers once the database is migrated and the web server is up.
  if ! "$VENV/bin/python" - "$probe" "$http_port" "$scheme" <<'PY'; then
import ssl, sys, time, urllib.error, urllib.request
url = f"{sys.argv[3]}://{sys.argv[1]}:{sys.argv[2]}/api/health"
tls = ssl.create_default_context()
tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE  # its own certificate
for _ in range(60):
    try:
        with urllib.request.urlopen(url, timeout=2, context=tls) as r:
            print("    health:", r.read().decode())
            sys.exit(0)
    except urllib.error.HTTPError as e:  # 503 says what is not right yet (clock, broker)
        print("    health:", e.read().decode())
        sys.exit(0)
    except OSError:
        time.sleep(0.5)
sys.exit(1)
PY
    die "the hub does not answer on $probe:$http_port: journalctl -u langso-hub -n 50"
  fi
fi
lan_ip=$(hostname -I 2>/dev/null | awk '{print $1}')
[[ $http_host == 0.0.0.0 || $http_host == :: ]] && web=${lan_ip:-<this Pi>} || web=$http_host
say "Done"
cat <<MSG
    residents' page:  $scheme://$web:$http_port/
    staff dashboard:  $scheme://$web:$http_port/app/   (user: admin)
    broker for devices: ${lan_ip:-<this Pi>}:1883, one account per device:
                        sudo $ADD_DEVICE DEVICE_ID   (see $PREFIX/README.md)
    settings: $CONFIG   data and nightly backups: $DATA
MSG
if [[ -n $admin_password ]]; then
  printf '\n    admin password (shown once, write it down): %s\n' "$admin_password"
fi
[[ $http_host == 127.0.0.1 ]] && warn "http.host is 127.0.0.1: the page is reachable from this Pi only"
[[ -n $pi_note ]] && note "not a Raspberry Pi: GPIO runs on mock pins (see $ENV_FILE)"
[[ -n $reboot_note ]] && warn "$reboot_note"
((NO_START)) && note "nothing was started (--no-start): sudo systemctl restart mosquitto langso-hub"
note "schedules wait for a synchronised clock: timedatectl shows 'System clock synchronized: yes'"
note "before printing the QR poster, give the Pi a fixed address and set http.public_url in $CONFIG"
exit 0
