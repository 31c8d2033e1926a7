#!/usr/bin/env bash
# Remove Làng Số Hub installed by deploy/install-pi.sh, as root:
#     sudo deploy/uninstall-pi.sh            the program, its units and broker settings
#     sudo deploy/uninstall-pi.sh --purge    and the settings, data, accounts and user
#     deploy/uninstall-pi.sh --dry-run       print what it would do, change nothing
# Without --purge, /etc/langso (settings, broker password), /var/lib/langso (database,
# backups), the broker accounts and the langso user stay, so that install-pi.sh later
# picks up where this left. System packages (Mosquitto, espeak-ng...), fake-hwclock and
# a clock-board line in /boot/firmware/config.txt are left too: other things may use them.
# Safe to run again: what is already gone is skipped.
set -euo pipefail

usage() { sed -n '2,10s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

DRY_RUN=0 PURGE=0
while (($#)); do
  case $1 in
    -n | --dry-run) DRY_RUN=1; shift ;;
    --purge) PURGE=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "uninstall-pi.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done

# The paths install-pi.sh writes (keep the two lists together).
PREFIX=/opt/langso
ETC=/etc/langso
DATA=/var/lib/langso
UNIT_DIR=/etc/systemd/system
MOSQ_CONF=/etc/mosquitto/conf.d/langso.conf
MOSQ_DYNSEC=/var/lib/mosquitto/dynamic-security.json
CTRL_CONF=/root/.config/mosquitto_ctrl
ADD_DEVICE=/usr/local/sbin/langso-add-device
HUB_USER=langso

say() { printf '\n==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() { printf 'uninstall-pi.sh: %s\n' "$*" >&2; exit 1; }
run() {
  if ((DRY_RUN)); then
    local cmd
    cmd=$(printf '%q ' "$@")
    note "would run: ${cmd% }"
  else
    "$@"
  fi
}
# remove PATH...: each one that exists (files or folders).
remove() {
  local path
  for path in "$@"; do
    if [[ -e $path || -L $path ]]; then
      run rm -rf -- "$path"
    fi
  done
}

((DRY_RUN)) && echo "Dry run: nothing is changed; this is what an uninstall would do."
if ((!DRY_RUN)) && [[ $(id -u) -ne 0 ]]; then
  die "run as root: sudo $0 (or --dry-run to see the plan)"
fi
SYSTEMD=0
[[ -d /run/systemd/system ]] && SYSTEMD=1

say "systemd units"
# Every langso-* unit, whatever this version shipped. The amplifier is switched off by
# the hub's own stop (ExecStopPost) before its unit file goes.
shopt -s nullglob
units=()
for path in "$UNIT_DIR"/langso-*.service "$UNIT_DIR"/langso-*.timer; do
  units+=("${path##*/}")
done
if ((${#units[@]})); then
  ((SYSTEMD)) && run systemctl stop "${units[@]}"
  # disable works on the files (the .wants links) with or without a running systemd.
  run systemctl disable --quiet "${units[@]}"
  for unit in "${units[@]}"; do
    remove "$UNIT_DIR/$unit"
    # Local changes made with `systemctl edit`: kept unless --purge.
    ((PURGE)) && remove "$UNIT_DIR/$unit.d"
  done
  ((SYSTEMD)) && run systemctl daemon-reload
else
  note "no langso units in $UNIT_DIR"
fi

say "Program and broker settings"
remove "$PREFIX" "$ADD_DEVICE" "$MOSQ_CONF" "$MOSQ_CONF.dist"
if ((SYSTEMD)) && systemctl is-active --quiet mosquitto.service; then
  # Without langso.conf the broker is Debian's default again (local connections only).
  run systemctl restart mosquitto.service
fi

if ((PURGE)); then
  say "Settings, data, accounts (--purge)"
  remove "$ETC" "$DATA" "$MOSQ_DYNSEC" "$CTRL_CONF"
  if getent passwd "$HUB_USER" >/dev/null; then
    # Also removes its group (created with it by useradd --user-group).
    run userdel "$HUB_USER"
  fi
  if getent group "$HUB_USER" >/dev/null; then
    run groupdel "$HUB_USER"
  fi
else
  note "kept: $ETC, $DATA, $MOSQ_DYNSEC, $CTRL_CONF, user $HUB_USER (--purge removes them)"
fi

say "Done"
note "left: system packages (mosquitto, espeak-ng, ffmpeg...), fake-hwclock, /boot config lines"
