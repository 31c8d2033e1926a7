"""Upgrade work a migration leaves to be done in chunks: the JSON readings of ``events``.

Run by :meth:`hub.store.Store.migrate` at start, after the SQL migrations. Migration 15
(the time-major ``readings`` table, :mod:`hub.store.readings`) marks the work with the
meta key ``readings_json`` (the last ``events`` id converted); each chunk converts a few
thousand JSON readings and deletes them in one transaction, so a Pi with a year-old
database needs neither the RAM nor a WAL the size of it, and a start cut short (a power
cut, systemd's timeout) goes on where it stopped at the next one.
"""

from __future__ import annotations

import json
import logging
import sqlite3

from hub.store import codec, immediate
from hub.store import readings as raw

log = logging.getLogger(__name__)

CHUNK = 5000

_KEY = "readings_json"


def convert_json_readings(conn: sqlite3.Connection) -> int:
    """Convert what is left; how many readings were converted."""
    row = conn.execute("SELECT value FROM meta WHERE key=?", (_KEY,)).fetchone()
    if row is None:
        return 0
    last = int(row[0])
    codes = raw.Codes()
    infos: dict[str, tuple[str, float]] = {}
    ranks: dict[str, tuple[int, int]] = {}  # device -> (ms, readings at it so far)
    done = 0
    while True:
        with immediate(conn):
            rows = conn.execute(
                "SELECT id, ts, received_at, device_id, topic, data FROM events"
                " WHERE type='reading' AND id > ? ORDER BY id LIMIT ?",
                (last, CHUNK),
            ).fetchall()
            if not rows:
                conn.execute("DELETE FROM meta WHERE key=?", (_KEY,))
                break
            out: list[raw.ReadingRow] = []
            info_rows: list[tuple[float, float, str, str, str, str]] = []
            for _id, ts, received, device, topic, data in rows:
                body = json.loads(data)
                metrics = body.get("metrics") or {}
                vals = [
                    (codes.code(conn, "m", k), v)
                    for k, v in metrics.items()
                    if isinstance(v, int | float) and not isinstance(v, bool)
                ]
                info = body.get("info")
                flag = 0
                if info:
                    flag = 1
                    text = json.dumps(info, ensure_ascii=False, separators=(",", ":"))
                    seen = infos.get(device or "")
                    if seen is None or seen[0] != text or ts - seen[1] >= raw.INFO_REFRESH_S:
                        info_rows.append((ts, received, device, "info", topic, text))
                        infos[device or ""] = (text, ts)
                t = round(ts * 1000)
                prev = ranks.get(device or "")
                rank = prev[1] if prev is not None and prev[0] == t else 0
                ranks[device or ""] = (t, rank + 1)
                slot, ms = raw.split_ms(ts, rank)
                out.append(
                    (
                        0,
                        slot,
                        codes.code(conn, "d", device or ""),
                        ms,
                        round((received - ts) * 1000),
                        codes.code(conn, "t", topic),
                        flag,
                        codec.encode(vals),
                    )
                )
            raw.insert_readings(conn, out)
            conn.executemany(
                "INSERT INTO events(ts, received_at, device_id, type, topic, data)"
                " VALUES (?,?,?,?,?,?)",
                info_rows,
            )
            conn.execute(
                "DELETE FROM events WHERE type='reading' AND id > ? AND id <= ?",
                (last, rows[-1][0]),
            )
            last = rows[-1][0]
            conn.execute("UPDATE meta SET value=? WHERE key=?", (str(last), _KEY))
            done += len(rows)
    if done:
        log.info("upgrade: %d JSON readings converted to the packed layout", done)
    return done
