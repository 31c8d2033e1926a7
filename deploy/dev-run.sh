#!/usr/bin/env bash
# `make run`: a private Mosquitto, the hub (SQLite in var/, file audio sink) and a
# simulated village, all in this terminal. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
MQTT_PORT=${LANGSO_DEV_MQTT_PORT:-18830}
export LANGSO_MQTT__HOST=127.0.0.1 LANGSO_MQTT__PORT=$MQTT_PORT
export LANGSO_DATA_DIR=${LANGSO_DATA_DIR:-var} LANGSO_AUDIO__SINK=${LANGSO_AUDIO__SINK:-file}
export GPIOZERO_PIN_FACTORY=${GPIOZERO_PIN_FACTORY:-mock}
# A laptop or container cannot always tell whether its clock is synchronised; on the Pi
# (deploy/install-pi.sh) the hub waits for NTP before it plays anything.
export LANGSO_ANNOUNCEMENTS__REQUIRE_CLOCK_SYNC=${LANGSO_ANNOUNCEMENTS__REQUIRE_CLOCK_SYNC:-false}
CONFIG=config/hub.toml
mkdir -p "$LANGSO_DATA_DIR" var/mosquitto
# Started as root, Mosquitto runs as the user `mosquitto`: it must be able to write its
# persistence file, or queued messages are lost when it restarts.
if [ "$(id -u)" -eq 0 ] && id mosquitto >/dev/null 2>&1; then chown mosquitto var/mosquitto; fi

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
"$MOSQUITTO" -c config/mosquitto-dev.conf > var/mosquitto/mosquitto.log 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  (exec 3<>/dev/tcp/127.0.0.1/"$MQTT_PORT") 2>/dev/null && break
  kill -0 "${pids[0]}" 2>/dev/null || { echo "mosquitto failed: see var/mosquitto/mosquitto.log" >&2; exit 1; }
  sleep 0.1
done

$BIN/langso check-config "$CONFIG" >/dev/null
if ! $BIN/langso user exists admin --config "$CONFIG"; then
  PASSWORD=$($BIN/python -c 'import secrets; print(secrets.token_urlsafe(12))')
  echo "$PASSWORD" | $BIN/langso user add admin --role admin --password-stdin --config "$CONFIG" >/dev/null
  NEW_ADMIN="admin password (shown once, keep it): $PASSWORD"
else
  NEW_ADMIN="admin account exists (password as shown the first time)"
fi

$BIN/langso simulate --aps 20 --sensors 5 --interval 5 --config "$CONFIG" > var/simulator.log 2>&1 &
pids+=($!)

HTTP_HOST=$($BIN/python -c 'from hub.settings import load_settings; s=load_settings("'"$CONFIG"'"); print(s.http.host, s.http.port)')
read -r HTTP_ADDR HTTP_PORT <<<"$HTTP_HOST"
cat <<MSG

  Làng Số Hub is starting
  dashboard:        http://$HTTP_ADDR:$HTTP_PORT/app/
  residents' page:  http://$HTTP_ADDR:$HTTP_PORT/
  API:              http://$HTTP_ADDR:$HTTP_PORT/docs
  user:             admin
  $NEW_ADMIN
  broker:           127.0.0.1:$MQTT_PORT (simulated village: 20 APs, 5 sensors)
  Ctrl-C stops everything.

MSG
$BIN/langso run --config "$CONFIG"
