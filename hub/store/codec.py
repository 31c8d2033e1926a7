"""Codec of the raw readings: a reading's numbers packed in a few bytes, no JSON text.

Used by :mod:`hub.store.readings` (written by the ingest writer, read by the API and
retention). A reading's values are a sequence of entries, each ``varint(code << 3 | tag)``
then the value, ``code`` being the metric's number in the ``codes`` dictionary:

- tag 0: an int (a zig-zag varint), read back as an int;
- tags 1-4: a float with 0-3 decimals, as the zig-zag varint of ``value * 10**(tag-1)``
  (kept only when dividing it back gives the very same float), read back as that float;
- tag 5: any other float, 8 bytes.

So ``cpu_pct`` 12.3 takes 3 bytes with its code, a signal of -61 dBm 2, a byte counter
6: an access point's ten metrics about 35 bytes, where the JSON row took about 200. The
JSON the API shows is rebuilt exactly (ints stay ints, floats floats).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

#: Divisor of each decimal tag.
SCALES = (1, 1.0, 10.0, 100.0, 1000.0)
FLOAT_TAG = 5
_F64 = struct.Struct("<d")
_MAX_EXACT = 2**53


def _varint(out: bytearray, z: int) -> None:
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)


def scaled(v: float) -> tuple[int, int] | None:
    """``(tag, s)`` for a float with at most 3 decimals (exactly), else None.

    ``repr`` is the shortest text that reads back as the same float, so its digits,
    divided back by their power of ten (a correctly rounded division), give that float."""
    r = repr(v)
    dot = r.find(".")
    if dot < 0 or "e" in r:
        return None  # inf, nan (never stored) or an exponent
    k = len(r) - dot - 1
    if r.endswith(".0"):
        s, tag = int(v), 1
    elif k <= 3:
        s, tag = int(r[:dot] + r[dot + 1 :]), k + 1
    else:
        return None
    return (tag, s) if -_MAX_EXACT < s < _MAX_EXACT else None


def encode(values: Iterable[tuple[int, float]]) -> bytes:
    """``(code, value)`` pairs, in the order given, as bytes."""
    out = bytearray()
    append = out.append
    for code, v in values:
        if type(v) is int or type(v) is bool:
            tag, s = 0, int(v)
        else:
            f = float(v)
            sv = scaled(f)
            if sv is None:
                _varint(out, code << 3 | FLOAT_TAG)
                out += _F64.pack(f)
                continue
            tag, s = sv
        h = code << 3 | tag
        if h < 0x80:
            append(h)
        else:
            _varint(out, h)
        z = s << 1 if s >= 0 else ((-s) << 1) - 1
        if z < 0x80:
            append(z)
        else:
            _varint(out, z)
    return bytes(out)


def entries(blob: bytes) -> Iterator[tuple[int, int, int | float]]:
    """``(code, tag, raw)`` per value: ``raw`` the scaled int (tags 0-4) or the float (5)."""
    i, n = 0, len(blob)
    while i < n:
        b = blob[i]
        i += 1
        h, shift = b & 0x7F, 7
        while b & 0x80:
            b = blob[i]
            i += 1
            h |= (b & 0x7F) << shift
            shift += 7
        tag = h & 7
        if tag == FLOAT_TAG:
            yield h >> 3, tag, _F64.unpack_from(blob, i)[0]
            i += 8
            continue
        b = blob[i]
        i += 1
        z, shift = b & 0x7F, 7
        while b & 0x80:
            b = blob[i]
            i += 1
            z |= (b & 0x7F) << shift
            shift += 7
        yield h >> 3, tag, (z >> 1) ^ -(z & 1)


def value(tag: int, raw: int | float) -> int | float:
    """The value as it was sent."""
    if tag == 0 or tag == FLOAT_TAG:
        return raw
    return float(raw) if tag == 1 else raw / SCALES[tag]


def decode(blob: bytes) -> list[tuple[int, int | float]]:
    """``(code, value)`` pairs as they were encoded."""
    return [(code, value(tag, raw)) for code, tag, raw in entries(blob)]


def find(blob: bytes, code: int) -> int | float | None:
    """The value of one metric, or None when this reading does not carry it.

    :func:`entries` inlined, skipping the other values' varints: a day's series reads
    8,640 readings, and the generator took half of its time."""
    i, n = 0, len(blob)
    while i < n:
        b = blob[i]
        i += 1
        h, shift = b & 0x7F, 7
        while b & 0x80:
            b = blob[i]
            i += 1
            h |= (b & 0x7F) << shift
            shift += 7
        tag = h & 7
        if tag == FLOAT_TAG:
            if h >> 3 == code:
                return float(_F64.unpack_from(blob, i)[0])
            i += 8
            continue
        if h >> 3 != code:
            while blob[i] & 0x80:
                i += 1
            i += 1
            continue
        b = blob[i]
        i += 1
        z, shift = b & 0x7F, 7
        while b & 0x80:
            b = blob[i]
            i += 1
            z |= (b & 0x7F) << shift
            shift += 7
        return value(tag, (z >> 1) ^ -(z & 1))
    return None


def decimals(tag: int) -> int:
    """Decimals a tag's values carry (-1: a float kept whole)."""
    if tag == FLOAT_TAG:
        return -1
    return 0 if tag <= 1 else tag - 1
