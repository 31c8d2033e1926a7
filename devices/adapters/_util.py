"""Adapter helpers: the decoding steps every wire format shares, from payload bytes to values."""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache

import orjson

from devices.events import DecodeError

#: A hub device id (DESIGN "MQTT contract"): safe in topics, URLs and SQLite keys.
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
ID_RULE = "letters, digits and _ . : - (first a letter or digit, at most 64)"

# SQLite stores integers as signed 64 bits; a larger JSON integer is no reading.
_INT_LIMIT = 1 << 63
# Real payloads nest two or three levels (Tasmota ENERGY, Z2M color); deeper is junk.
_MAX_DEPTH = 8


def _reject_constant(name: str) -> object:
    # Python's json accepts NaN/Infinity, which are not JSON (RFC 8259).
    raise ValueError(f"{name} is not JSON")


# One decoder for every message: json.loads(..., **kw) would build a new one each call.
# It reads what orjson refuses, for the precise reason (1e999 is "not a finite number").
_JSON = json.JSONDecoder(parse_constant=_reject_constant)


def text(payload: bytes) -> str:
    """The payload as text: strict UTF-8, one trailing NUL removed (collectd sends strlen+1)."""
    if payload[-1:] == b"\0":
        payload = payload[:-1]
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError("not UTF-8") from None


def json_value(payload: bytes) -> object:
    """Any JSON value; an empty payload is its own error (a cleared retained message)."""
    s = text(payload)
    if not s:
        raise DecodeError("empty payload")
    try:
        # orjson: a quarter of the time of json's decoder (whose share of ingest was 10 %).
        # Like json, it refuses NaN/Infinity; integers beyond 64 bits come back as floats.
        return orjson.loads(s)
    except orjson.JSONDecodeError:
        pass
    try:
        return _JSON.decode(s)
    except (ValueError, RecursionError):
        raise DecodeError("not JSON") from None


def json_object(payload: bytes) -> dict[str, object]:
    value = json_value(payload)
    if not isinstance(value, dict):
        raise DecodeError("payload is not a JSON object")
    return value


def number(value: object, name: str) -> float:
    """A JSON number as a reading; booleans, strings and null are not readings."""
    # Exact types: JSON gives int, float, bool, str, None, list, dict (bool is no number).
    t = type(value)
    if t is float:
        if value - value == 0.0:  # type: ignore[operator]  # finite: inf - inf is nan
            return value  # type: ignore[return-value]
        raise DecodeError(f"field '{name}' is not a finite number")  # 1e999 parses to inf
    if t is int:
        if -_INT_LIMIT <= value < _INT_LIMIT:  # type: ignore[operator]
            return value  # type: ignore[return-value]
        raise DecodeError(f"field '{name}' is out of range")
    raise DecodeError(f"field '{name}' is not a number")


def epoch(seconds: float, name: str = "ts") -> datetime:
    """Epoch seconds as an aware UTC time; the adapter has no clock, so only junk is refused."""
    if not math.isfinite(seconds) or seconds < 0:
        raise DecodeError(f"field '{name}' is not a valid epoch time")
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise DecodeError(f"field '{name}' is not a valid epoch time") from None


def timestamp(value: object, name: str = "ts") -> datetime:
    """``ts``: epoch seconds or ISO 8601; an ISO time without offset is taken as UTC."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return epoch(value, name)
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            raise DecodeError(f"field '{name}' is not ISO 8601 or epoch seconds") from None
        return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    raise DecodeError(f"field '{name}' is not ISO 8601 or epoch seconds")


def online(payload: bytes, up: str = "online", down: str = "offline") -> bool:
    """A plain availability payload (``online``/``offline``, Tasmota ``Online``/``Offline``)."""
    s = text(payload)
    if s == up:
        return True
    if s == down:
        return False
    raise DecodeError(f"status must be '{up}' or '{down}', not {s[:40]!r}")


def device_id(raw: str, rename: Mapping[str, str]) -> str:
    """A source's own name that must already be a valid id (native, collectd, Tasmota)."""
    dev = rename.get(raw, raw)
    if ID_PATTERN.fullmatch(dev) is None:
        raise DecodeError(f"bad device id {dev[:80]!r}: use {ID_RULE}, or rename it")
    return dev


def foreign_id(raw: str, rename: Mapping[str, str]) -> str:
    """A free-form name (Zigbee2MQTT friendly name, ESPHome prefix) made into a device id."""
    dev = rename.get(raw)
    if dev is not None:
        return dev
    dev = slug(raw)
    if dev is None:
        raise DecodeError(f"cannot make a device id from {raw[:80]!r}: add it to rename")
    return dev


# Vietnamese đ/Đ is a letter of its own, not d + a combining mark, so NFKD keeps it.
_VI = str.maketrans({"đ": "d", "Đ": "D"})
_NOT_ID = re.compile(r"[^a-z0-9_.:-]+")


@lru_cache(maxsize=4096)  # friendly names are few and repeat on every message
def slug(name: str) -> str | None:
    """``Kitchen Motion`` -> ``kitchen-motion``; a name that is already an id is kept as it is."""
    if ID_PATTERN.fullmatch(name):
        return name
    plain = unicodedata.normalize("NFKD", name.translate(_VI)).encode("ascii", "ignore")
    out = _NOT_ID.sub("-", plain.decode("ascii").lower()).strip("-_.:")[:64].rstrip("-_.:")
    return out if ID_PATTERN.fullmatch(out) else None


def flatten(
    value: object,
    name: str,
    metrics: dict[str, float],
    info: dict[str, object],
    depth: int = 0,
) -> None:
    """Put a JSON value's numeric leaves in ``metrics`` and text/boolean leaves in ``info``.

    Leaves are named by their path, ``BME280.Temperature``, ``Channel.0``; JSON
    null means "no value" and is left out.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        metrics[name] = number(value, name)
    elif isinstance(value, (str, bool)):
        info[name] = value
    elif isinstance(value, dict):
        if depth >= _MAX_DEPTH:
            raise DecodeError(f"field '{name}' is nested too deeply")
        for key, item in value.items():
            flatten(item, f"{name}.{key}", metrics, info, depth + 1)
    elif isinstance(value, list):
        if depth >= _MAX_DEPTH:
            raise DecodeError(f"field '{name}' is nested too deeply")
        for i, item in enumerate(value):
            flatten(item, f"{name}.{i}", metrics, info, depth + 1)


def shown(topic: str) -> str:
    """A topic for an error message: topics may be 64 KiB, dead-letter reasons should not."""
    return topic if len(topic) <= 120 else topic[:117] + "..."
