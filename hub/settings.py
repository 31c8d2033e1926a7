"""Settings: the TOML file, ``LANGSO_…`` overrides, validated before anything starts."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from devices.adapters import ADAPTER_NAMES
from devices.events import DEVICE_KINDS
from hub.automation.notify_settings import NotifySettings
from hub.broadcast.cluster_settings import ClusterSettings
from hub.broadcast.live_settings import LiveSettings
from hub.errors import ConfigError
from hub.ingest.health_settings import DeviceHealth as DeviceHealth
from hub.ingest.health_settings import HealthSettings as HealthSettings
from hub.ingest.health_settings import KindHealth as KindHealth
from hub.ingest.health_settings import Threshold as Threshold
from hub.services.clock_settings import ClockSettings

_ID = r"^[a-z0-9][a-z0-9-]{0,62}$"


class _Model(BaseModel):
    # hide_input_in_errors: a mistyped password must not be echoed in an error message.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class MqttSettings(_Model):
    host: str = Field("127.0.0.1", description="Broker host name or address.")
    port: int = Field(1883, ge=1, le=65535, description="Broker port (8883 is usual with TLS).")
    username: str | None = Field(None, description="Broker user name; none for anonymous.")
    password: str | None = Field(None, description="Broker password (keep this file 0600).")
    client_id: str | None = Field(
        None,
        description="Stable client id: the broker keeps the session (queued QoS 1 messages) "
        "under it. Default `langso-hub-<site>`. With the shipped broker config "
        "(use_username_as_clientid) the broker uses the user name instead.",
    )
    protocol: Literal["3.1.1", "5"] = Field(
        "3.1.1", description="MQTT version; 3.1.1 costs less CPU per message in paho-mqtt."
    )
    keepalive_s: int = Field(30, ge=5, le=600, description="MQTT keep-alive in seconds.")
    tls: bool = Field(False, description="Connect with TLS.")
    ca_file: Path | None = Field(None, description="CA certificate file for TLS.")
    cert_file: Path | None = Field(None, description="Client certificate for TLS.")
    key_file: Path | None = Field(None, description="Client key for TLS.")
    reconnect_min_s: float = Field(0.5, gt=0, description="First reconnect delay.")
    reconnect_max_s: float = Field(30.0, gt=0, description="Longest reconnect delay (back-off).")


class HttpSettings(_Model):
    host: str = Field("127.0.0.1", description="Address the web API and page listen on.")
    port: int = Field(8080, ge=1, le=65535, description="Port of the web API and page.")
    cert_file: Path | None = Field(
        None,
        description="Serve https:// with this certificate (PEM; with key_file): a phone's "
        "browser gives the microphone (recording in the browser, live broadcasts) only to "
        "an https:// page. deploy/install-pi.sh --https makes one for the hub's addresses.",
    )
    key_file: Path | None = Field(None, description="The certificate's private key (PEM).")
    token_ttl_h: float = Field(
        12.0, gt=0, le=24 * 90, description="Lifetime of a bearer token, in hours."
    )
    login_attempts: int = Field(
        5, ge=1, description="Failed sign-ins per user name and address before a pause."
    )
    login_window_s: float = Field(300.0, gt=0, description="Window for counting failed sign-ins.")
    account_attempts: int = Field(
        20, ge=1, description="Failed sign-ins per user name, from any address, before a pause."
    )
    address_attempts: int = Field(
        30, ge=1, description="Failed sign-ins per address, for any user name, before a pause."
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For "
        "is believed; from anyone else the header is ignored.",
    )
    max_hashing: int = Field(
        2,
        ge=1,
        le=16,
        description="Password checks (Argon2id, about 19 MiB each) run at once; the rest "
        "wait briefly, then get 429.",
    )

    @model_validator(mode="after")
    def _tls_pair(self) -> HttpSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (https needs both)")
        for f in (self.cert_file, self.key_file):
            if f is not None and not f.is_file():
                raise ValueError(f"{f}: no such file")
        return self

    @property
    def scheme(self) -> str:
        return "https" if self.cert_file is not None else "http"

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, v: list[str]) -> list[str]:
        for p in v:
            try:
                ipaddress.ip_network(p.strip(), strict=False)
            except ValueError:
                raise ValueError(f"{p!r} is not an address or a network (CIDR)") from None
        return v

    public_url: str | None = Field(
        None,
        description="The address residents reach the hub at (http://192.168.1.10:8080, "
        "https://thon-dong.example.vn): QR codes, the poster, the feed and the calendar "
        "point there. Unset: the address the browser used.",
    )

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// address with a host name")
        if parts.query or parts.fragment:
            raise ValueError("must not have a ?query or #fragment")
        return v.rstrip("/")


class IngestSettings(_Model):
    batch_size: int = Field(
        2_000,
        ge=1,
        le=10_000,
        description="Messages committed (and acknowledged) at most at once: a commit "
        "writes about one index page per device in it, so under load bigger is cheaper.",
    )
    flush_ms: int = Field(
        50,
        ge=1,
        le=5000,
        description="Commit a partial batch after this long: the broker holds back messages "
        "beyond its in-flight limit until the hub acknowledges.",
    )
    max_payload_bytes: int = Field(
        16_384, ge=64, le=1_048_576, description="Bigger payloads go to dead letters."
    )
    dead_letter_bytes: int = Field(
        1024, ge=0, le=65_536, description="How much of a dead letter's raw payload is kept."
    )
    queue_max: int = Field(
        2_000,
        ge=100,
        description="Messages held in memory between MQTT and the writer (then TCP "
        "back-pressure holds the broker back).",
    )
    max_metrics_per_device: int = Field(
        64,
        ge=1,
        le=1024,
        description="Metric names one device may have; readings with new names beyond it go "
        "to dead letters.",
    )
    max_discovery_configs: int = Field(
        5_000,
        ge=0,
        description="Home Assistant discovery configs the hub publishes at most (0: none).",
    )
    commit_interval_s: float = Field(
        20.0,
        ge=0,
        le=20,
        description="Readings are committed (then acknowledged) together at most this long "
        "after the first of them: fewer, fuller commits wear the SD card less. Status, button "
        "and command events, a new device or metric, a health change and a reading a rule "
        "watches commit at once. 0: commit as soon as the queue runs dry.",
    )
    device_flush_s: float = Field(
        300.0,
        ge=0,
        le=3600,
        description="Devices' rows (last seen, latest metrics) are written all together at "
        "most this often; their live state is in memory and, after a crash, in the raw "
        "readings. A new device and a health change are written at once.",
    )


class AdapterSettings(_Model):
    enabled: bool = Field(True, description="Decode this source.")
    root: str | None = Field(None, description="Topic root if not the source's standard one.")
    kind: str | None = Field(None, description="Device kind given to this source's devices.")
    rename: dict[str, str] = Field(
        default_factory=dict, description="Source name -> hub device id."
    )

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str | None) -> str | None:
        if v is not None and v not in DEVICE_KINDS:
            raise ValueError(f"must be one of {', '.join(DEVICE_KINDS)}")
        return v


def _default_adapters() -> dict[str, AdapterSettings]:
    return {name: AdapterSettings() for name in ADAPTER_NAMES}


class RetentionSettings(_Model):
    events_days: float = Field(
        2,
        gt=0,
        description="Raw readings (every value as sent) and events are kept this long; hourly "
        "rollups beyond.",
    )
    raw_days_by_metric: dict[str, float] = Field(
        default_factory=dict,
        description="Metrics whose raw readings are kept longer (or shorter) than events_days, "
        "in days, e.g. {water_level_cm = 30}; applies to readings stored from then on.",
    )
    rollup_days: float = Field(
        400, gt=0, description="Metric rollups (daily; hourly for hourly_days) are kept this long."
    )
    hourly_days: float = Field(
        90,
        gt=0,
        description="Hourly rollups are kept this long (at most rollup_days), daily ones beyond: "
        "a chart older than this shows days.",
    )
    rollup_days_by_metric: dict[str, float] = Field(
        # An access point's uptime, radio channel and noise floor say little a month on;
        # their year of rollups was 170 of a year's 645 MB (bench/year.py).
        default_factory=lambda: {"uptime_s": 30.0, "channel": 30.0, "noise_dbm": 30.0},
        description="Metrics whose hourly rollups are kept another number of days than "
        "rollup_days, e.g. {uptime_s = 30} (the default: uptime_s, channel and noise_dbm "
        "30 days; a value given replaces the whole table).",
    )

    @field_validator("raw_days_by_metric", "rollup_days_by_metric")
    @classmethod
    def _days(cls, v: dict[str, float]) -> dict[str, float]:
        bad = [k for k, d in v.items() if not d > 0]
        if bad:
            raise ValueError(f"days must be more than 0 (for {', '.join(sorted(bad))})")
        return v

    dead_letters_days: float = Field(30, gt=0, description="Dead letters are kept this long.")
    alerts_days: float = Field(400, gt=0, description="Cleared alerts are kept this long.")
    feedback_days: float = Field(
        400,
        gt=0,
        description="Residents' feedback marked done (names, contacts: personal data) is "
        "kept this long after it was last changed.",
    )
    render_cache_days: float = Field(
        30,
        gt=0,
        description="Rendered audio no announcement uses (listen previews, replaced versions) "
        "is deleted this long after it was last used.",
    )
    sweep_interval_s: float = Field(600, gt=0, description="How often rollups and retention run.")


class AudioSettings(_Model):
    sink: Literal["alsa", "file", "null"] = Field("alsa", description="Where broadcasts play.")
    file_dir: Path | None = Field(
        None, description="Where the file sink writes (default <data_dir>/broadcasts)."
    )
    alsa_device: str = Field("default", description="ALSA device for aplay.")
    tts_engine: Literal["espeak-ng", "piper"] = Field(
        "espeak-ng",
        description="Engine of the default voice: espeak-ng, or piper (then `voice` is a "
        "Piper voice installed with `langso voice add`: piper:NAME).",
    )
    voice: str = Field(
        "north",
        max_length=40,
        description="Default voice: north, central, south (espeak-ng) or piper:NAME.",
    )
    fallback_voice: str = Field(
        "north",
        max_length=40,
        description="espeak-ng voice that reads a text when a Piper voice cannot.",
    )
    piper_timeout_s: float = Field(
        180.0,
        gt=0,
        le=3600,
        description="Longest a Piper render may take (s); then espeak-ng reads the text.",
    )
    sample_rate: int = Field(22050, ge=8000, le=48000, description="PA sample rate (Hz).")
    target_lufs: float = Field(-16.0, ge=-40, le=-5, description="Loudness target (LUFS).")
    emergency_lufs: float = Field(
        -12.0, ge=-40, le=-5, description="Loudness of emergency broadcasts (LUFS)."
    )
    true_peak_db: float = Field(-1.0, le=0, description="True-peak ceiling (dBTP).")
    chime: str = Field(
        "generated", description="Chime before and after: generated, none, or a file path."
    )
    repeat_gap_s: float = Field(2.0, ge=0, le=30, description="Silence between repeats.")
    rates: dict[str, float] = Field(
        default_factory=dict,
        description="Speaking rate per voice, a factor of its normal speed (0.6 to 1.4; 1 where "
        'not set), e.g. {north = 0.9, "piper:NAME" = 0.85}; an announcement\'s own rate '
        "(the compose page's slow / fast) multiplies it.",
    )
    sentence_pause_s: float = Field(
        0.6,
        ge=0,
        le=3,
        description="Silence added after each sentence (s): a horn speaker's echo dies down "
        "and a listener catches up; 0 for none.",
    )
    max_upload_mb: float = Field(25, gt=0, le=200, description="Largest recording accepted.")
    max_upload_s: float = Field(900, gt=0, description="Longest recording accepted (s).")
    render_cache_mb: float = Field(
        64,
        gt=0,
        le=100_000,
        description="Size budget of the rendered audio (<data_dir>/render), in MB: over it, "
        "the least recently used goes first; emergency audio is never evicted.",
    )
    prerender_max: int = Field(
        6,
        ge=0,
        le=200,
        description="Emergency texts the rules may say, made ready ahead at most (the most "
        "urgent first): a text with a reading in it as its words around the number, in "
        "memory; a fixed one (or any, with a voice too slow to say a number at once) "
        "rendered into the render cache, about 2 MB each; 0: only when needed.",
    )

    @field_validator("rates")
    @classmethod
    def _rates(cls, rates: dict[str, float]) -> dict[str, float]:
        for voice, rate in rates.items():
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,39}", voice):
                raise ValueError(f"{voice!r}: not a voice id (north, central, south, piper:NAME)")
            if not 0.6 <= rate <= 1.4:
                raise ValueError(f"{voice}: rate {rate:g} is out of range: use 0.6 to 1.4")
        return rates

    @model_validator(mode="after")
    def _engine_names_voice(self) -> AudioSettings:
        if self.tts_engine == "piper" and not self.voice.startswith("piper:"):
            raise ValueError(
                f'voice {self.voice!r}: with tts_engine = "piper", name a Piper voice '
                "installed with `langso voice add`: piper:NAME (see `langso voice list`)"
            )
        return self


class AnnouncementSettings(_Model):
    require_approval: bool = Field(
        False,
        description="Non-emergency announcements need a second person's approval "
        "(draft -> approved -> scheduled).",
    )
    grace_s: float = Field(
        600, ge=0, description="After downtime, an occurrence missed by less than this plays."
    )
    quiet_hours: str | None = Field(
        "21:30-05:30",
        pattern=r"^(\d{2}:\d{2}-\d{2}:\d{2})?$",
        description="Local window in which normal broadcasts wait (emergencies do not); "
        "empty for none.",
    )
    daily_cap: int = Field(
        12, ge=1, description="Normal and priority broadcasts per local day at most."
    )
    emergency_repeats: int = Field(3, ge=1, le=10, description="Repeats of an emergency.")
    replay_interrupted_emergency: bool = Field(
        True,
        description="An emergency cut by a crash or a power cut plays again at once when the "
        "hub is back (once: a replay cut again is not replayed).",
    )
    replay_interrupted: bool = Field(
        True,
        description="A normal or priority broadcast cut by a crash or a power cut plays again "
        "when the hub is back within grace_s of its time (once).",
    )
    require_clock_sync: bool = Field(
        True,
        description="Nothing fires while the system clock is not synchronised (a Pi has no "
        "battery clock); an alert says why.",
    )
    emergency_text: str = Field(
        "Thông báo khẩn cấp. Đề nghị bà con chú ý theo dõi loa truyền thanh và làm theo "
        "hướng dẫn của chính quyền thôn.",
        description="Read when the emergency button is held.",
    )


class GpioSettings(_Model):
    enabled: bool = Field(True, description="Drive the amplifier and relays through gpiozero.")
    amplifier_pin: int = Field(17, ge=0, le=27, description="BCM pin of the amplifier relay.")
    amplifier_active_high: bool = Field(True, description="Relay switches on a high level.")
    lead_in_s: float = Field(
        1.5, ge=0, le=10, description="Amplifier on this long before the first word."
    )
    tail_s: float = Field(2.0, ge=0, le=30, description="Amplifier off this long after.")
    max_on_s: float = Field(1800, gt=0, description="Hard cap on amplifier on-time.")
    zones: dict[str, int] = Field(
        default_factory=lambda: {"xom-dong": 27, "xom-tay": 22},
        description="Loudspeaker zones: name -> BCM pin of its relay.",
    )
    zones_active_high: bool = Field(True, description="Zone relays switch on a high level.")
    zone_names: dict[str, str] = Field(
        default_factory=lambda: {"xom-dong": "Xóm Đông", "xom-tay": "Xóm Tây"},
        description="What people call each zone (zone -> name), shown on the pages.",
    )
    on_air_led_pin: int | None = Field(23, ge=0, le=27, description="BCM pin of the LED.")
    emergency_button_pin: int | None = Field(
        24, ge=0, le=27, description="Emergency button (held 2 s)."
    )
    stop_button_pin: int | None = Field(25, ge=0, le=27, description="Stop button.")
    outputs: dict[str, int] = Field(
        default_factory=lambda: {"siren": 5},
        description="Relays the rules may switch for a while: name -> BCM pin.",
    )

    @model_validator(mode="after")
    def _pins(self) -> GpioSettings:
        uses: dict[int, str] = {}
        named = [
            ("amplifier_pin", self.amplifier_pin),
            ("on_air_led_pin", self.on_air_led_pin),
            ("emergency_button_pin", self.emergency_button_pin),
            ("stop_button_pin", self.stop_button_pin),
        ]
        named += [(f"zones.{z}", p) for z, p in self.zones.items()]
        named += [(f"outputs.{o}", p) for o, p in self.outputs.items()]
        for name, pin in named:
            if pin is None:
                continue
            if pin in uses:
                raise ValueError(f"GPIO{pin} is used twice: by {uses[pin]} and {name}")
            uses[pin] = name
        if "all" in self.zones:
            raise ValueError("zone name 'all' is reserved (it means every zone)")
        unknown = sorted(set(self.zone_names) - set(self.zones))
        if unknown:
            raise ValueError(f"zone_names names zones that gpio.zones has not: {unknown}")
        return self


class Settings(_Model):
    site: str = Field("thon-dong", pattern=_ID, description="Village id used in MQTT topics.")
    village_name: str | None = Field(
        None,
        min_length=1,
        max_length=80,
        description='The village\'s name as people write it ("Thôn Đông, xã An Bình"): '
        "page headers, the poster, the feed and the calendar. Default: the site id.",
    )
    timezone: str = Field("Asia/Ho_Chi_Minh", description="The village's time zone (IANA).")
    data_dir: Path = Field(Path("var"), description="Database, audio cache and backups.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Logging level."
    )
    rules_file: Path | None = Field(
        Path("rules.toml"),
        description="Ready-made event rules loaded at start, relative to the settings "
        "file's folder (rules added through the API are kept in the database).",
    )
    mqtt: MqttSettings = Field(default_factory=MqttSettings, description="The broker.")
    http: HttpSettings = Field(default_factory=HttpSettings, description="The web API and page.")
    ingest: IngestSettings = Field(
        default_factory=IngestSettings, description="From MQTT to the database."
    )
    adapters: dict[str, AdapterSettings] = Field(
        default_factory=_default_adapters, description="Wire formats decoded, per source."
    )
    health: HealthSettings = Field(default_factory=HealthSettings, description="Device health.")
    retention: RetentionSettings = Field(
        default_factory=RetentionSettings, description="How long data is kept."
    )
    audio: AudioSettings = Field(default_factory=AudioSettings, description="Audio output.")
    announcements: AnnouncementSettings = Field(
        default_factory=AnnouncementSettings, description="Scheduling and playout policy."
    )
    gpio: GpioSettings = Field(
        default_factory=GpioSettings, description="Amplifier, zone relays, LED, buttons."
    )
    notify: NotifySettings = Field(
        default_factory=NotifySettings, description="Messages to technicians and the village head."
    )
    clock: ClockSettings = Field(default_factory=ClockSettings, description="Trusting the clock.")
    clusters: ClusterSettings = Field(
        default_factory=ClusterSettings, description="Remote speaker clusters (Snapcast)."
    )
    live: LiveSettings = Field(
        default_factory=LiveSettings, description="Live broadcasts from the head's phone."
    )

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (e.g. Asia/Ho_Chi_Minh)") from None
        return v

    @field_validator("adapters")
    @classmethod
    def _adapters(cls, v: dict[str, AdapterSettings]) -> dict[str, AdapterSettings]:
        bad = sorted(set(v) - set(ADAPTER_NAMES))
        if bad:
            raise ValueError(f"unknown adapter {bad[0]!r}; adapters are {', '.join(ADAPTER_NAMES)}")
        return {**_default_adapters(), **v}

    @model_validator(mode="after")
    def _cross(self) -> Settings:
        if self.mqtt.reconnect_max_s < self.mqtt.reconnect_min_s:
            raise ValueError("mqtt.reconnect_max_s must be ≥ mqtt.reconnect_min_s")
        if self.mqtt.tls is False and (self.mqtt.cert_file or self.mqtt.key_file):
            raise ValueError("mqtt.cert_file/key_file given but mqtt.tls is false")
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def village(self) -> str:
        """What people read where the village is named (the site id is for machines)."""
        return (self.village_name or "").strip() or self.site

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or f"langso-hub-{self.site}"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "hub.db"


_ENV = re.compile(r"^LANGSO_([A-Z0-9_]+)$")


def _env_value(raw: str) -> Any:
    """Env values are strings (validation converts "1883" or "true"); JSON in ``[…]``,
    ``{…}`` or ``"…"`` lets an override carry a list, a table or a quoted string."""
    if raw[:1] in ("[", "{", '"'):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> list[str]:
    applied = []
    for name, raw in sorted(env.items()):
        m = _ENV.match(name)
        if not m or name == "LANGSO_CONFIG":
            continue
        path = [p.lower() for p in m.group(1).split("__")]
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"env {name}", ".".join(path), "parent key is not a table")
            node = child
        node[path[-1]] = _env_value(raw)
        applied.append(name)
    return applied


def _key(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc if not str(p).startswith("function-")) or "(top level)"


def load_settings(path: Path | str | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read the TOML file (if any), apply ``LANGSO_…`` overrides, validate.

    Raises :class:`ConfigError` as ``file: key: reason`` on the first problem.
    """
    env = os.environ if env is None else env
    source = str(path) if path else "(defaults)"
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(source, "(file)", "no such file") from None
        except UnicodeDecodeError:
            raise ConfigError(source, "(file)", "not UTF-8 text") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(source, "(syntax)", str(e)) from None
    applied = _apply_env(data, env)
    base = Path(path).parent if path is not None else Path("config")
    try:
        settings = Settings.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        key = _key(err["loc"])
        reason = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            reason = "unknown key (misspelt? see config/hub.toml)"
        where = source
        env_name = "LANGSO_" + "__".join(str(p).upper() for p in err["loc"][:2])
        if env_name in applied or ("LANGSO_" + str(err["loc"][0]).upper()) in applied:
            where = f"{source} (with {env_name if env_name in applied else 'env'})"
        raise ConfigError(where, key, reason) from None
    if settings.rules_file is not None and not settings.rules_file.is_absolute():
        settings = settings.model_copy(update={"rules_file": base / settings.rules_file})
    return settings
