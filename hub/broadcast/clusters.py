"""Broadcast stage, the remote speaker clusters: which ones a broadcast is for, which of those
Snapcast can reach, routing them, their amplifiers, and what the playout log says of them.

A cluster is a device of kind ``speaker`` (its node agent publishes
``village/{site}/speaker/{id}/...``); its snapclient runs with ``--hostID <id>``, so its
Snapcast client id is its device id, and its zone is the device's (the devices page, or
``health.devices.<id>.zone``). Clients in ``clusters.everywhere`` (the cultural house's own
amplifier) hear every broadcast.

Routing is per client, by mute and volume, not by moving clients between Snapcast groups:
a client's mute survives its reconnects (snapserver keeps it under the client's id), one
idempotent ``Client.SetVolume`` per client needs no group ids (which change as groups form
and empty), and a client that joins mid-broadcast is put right by one call. Between
broadcasts every client is muted (a new client joins unmuted); for a broadcast the clients
of its zones are unmuted at ``clusters.volume``; an emergency unmutes every client at
``clusters.emergency_volume``.

The playout calls :meth:`Clusters.reach` (for the row written before the amplifier),
:meth:`open` (route, amplifiers on: ``speaker/{id}/cmd`` ``{"amp": "on", ...}``),
:meth:`audio_done` (amplifiers off after the node's tail, everyone muted) and :meth:`close`
(the note for the log: ``clusters 5/6; missing: cum-tay (Xóm Tây)``, and a
``cluster_missed`` alert per cluster that did not hear all of it, cleared when it is back).

Threads: ``reach``/``open``/``audio_done``/``close`` in the playout thread; snapserver's
notifications in ``snapcast-rpc`` (recorded, then handed over); ``cluster-watch`` reads
every client's state each ``poll_s`` (and at once after a notification), mutes strays,
unmutes a member that came back mid-broadcast, and clears the alerts of clusters back.
One lock guards the session; snapserver is never called under it.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from audio.sinks import Sink, make_sink
from hub.broadcast.cluster_settings import ClusterSettings
from hub.broadcast.hub_alerts import HUB
from hub.broadcast.snapcast import SnapcastControl, SnapcastError, SnapClient
from hub.events import AlertChange
from hub.store import Store
from hub.store import alerts as alert_rows

log = logging.getLogger(__name__)

__all__ = ["Cluster", "ClusterNote", "Clusters", "Reach", "parse_note"]

#: The hub's alert (device ``hub``) for a cluster that missed (part of) a broadcast.
RULE = "cluster_missed"
#: Names in the log's note lose the characters the note itself uses.
_UNSAFE = re.compile(r"[;,()\n\r]")


@dataclass(frozen=True, slots=True)
class Cluster:
    """A speaker cluster as the hub knows it: its id (device id = Snapcast client id)."""

    id: str
    name: str = ""
    zone: str | None = None

    @property
    def label(self) -> str:
        name = _UNSAFE.sub(" ", self.name).strip()
        return f"{self.id} ({name})" if name and name != self.id else self.id


class Alerts(Protocol):
    """The hub's own alerts (hub.broadcast.hub_alerts.HubAlerts)."""

    def raise_(self, rule: str, severity: str, message: str) -> AlertChange: ...
    def clear(self, raised: AlertChange) -> None: ...


Publish = Callable[[str, bytes, bool], object]


@dataclass(frozen=True, slots=True)
class Reach:
    """The clusters a broadcast is for, and which of them Snapcast reaches now."""

    members: tuple[Cluster, ...]
    connected: frozenset[str]
    #: Why nothing could be asked of snapserver (down), else None.
    error: str | None = None

    @property
    def missing(self) -> tuple[Cluster, ...]:
        return tuple(c for c in self.members if c.id not in self.connected)

    def note(self) -> str:
        return _note(self.members, [c for c in self.members if c.id in self.connected], [])


@dataclass
class _Session:
    reach: Reach
    volume: int
    #: Members whose client left during the broadcast (maybe back since).
    lost: set[str] = field(default_factory=set)
    #: Members connected at some point during it.
    seen: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class ClusterNote:
    """What a log row says of the clusters (parsed back for the pages)."""

    heard: int
    total: int
    missing: tuple[str, ...]
    dropped: tuple[str, ...]


_NOTE = re.compile(
    r"clusters (?P<heard>\d+)/(?P<total>\d+)"
    r"(?:; missing: (?P<missing>[^;]+))?(?:; dropped: (?P<dropped>[^;]+))?"
)
_LABEL = re.compile(r"([^,(]+?)(?: \(([^)]*)\))?(?:, |$)")


def _note(members: Sequence[Cluster], heard: Sequence[Cluster], dropped: Sequence[Cluster]) -> str:
    heard_ids = {c.id for c in heard}
    dropped_ids = {c.id for c in dropped}
    missing = [c for c in members if c.id not in heard_ids and c.id not in dropped_ids]
    text = f"clusters {len(heard)}/{len(members)}"
    if missing:
        text += "; missing: " + ", ".join(c.label for c in missing)
    if dropped:
        text += "; dropped: " + ", ".join(c.label for c in dropped)
    return text


def parse_note(detail: str | None) -> ClusterNote | None:
    """The clusters' part of a log row's detail, or None if it has none. Names are given
    for the clusters that have one (what people call them), else their ids."""
    m = _NOTE.search(detail or "")
    if m is None:
        return None

    def names(part: str | None) -> tuple[str, ...]:
        if not part:
            return ()
        return tuple((n or i).strip() for i, n in _LABEL.findall(part) if (n or i).strip())

    return ClusterNote(int(m["heard"]), int(m["total"]), names(m["missing"]), names(m["dropped"]))


class Clusters:
    """See the module's docstring."""

    def __init__(
        self,
        settings: ClusterSettings,
        *,
        site: str,
        roster: Callable[[], Sequence[Cluster]],
        publish: Publish,
        alerts: Alerts,
        open_alerts: Iterable[AlertChange] = (),
        control: SnapcastControl | None = None,
    ) -> None:
        self.settings, self.site = settings, site
        self._roster, self._publish, self._alerts = roster, publish, alerts
        self.control = control or SnapcastControl.from_settings(settings)
        self.control.on_notify = self._notified
        self.control.on_connect = self._wake_up
        self._lock = threading.Lock()
        self._session: _Session | None = None
        #: The last broadcast's note, for the pages until the log has it.
        self.last_note: str | None = None
        self._clients: dict[str, SnapClient] = {}
        self._raised: dict[str, AlertChange] = {}
        for a in open_alerts:  # a previous run's alerts: cleared when their cluster is back
            cid = a.message.split(":", 1)[0]
            if a.rule == RULE and cid:
                self._raised[cid] = a
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- life --------------------------------------------------------------------------------
    def start(self) -> None:
        self.control.start()
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="cluster-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self.control.close()

    @property
    def session(self) -> Reach | None:
        s = self._session
        return s.reach if s is not None else None

    def on_air_note(self) -> str | None:
        """What the clusters do in the broadcast on air now, as a log note; None when idle."""
        with self._lock:
            s = self._session
            if s is None:
                return None
            heard = [c for c in s.reach.members if c.id in s.seen and c.id not in s.lost]
            dropped = [c for c in s.reach.members if c.id in s.lost]
        return _note(s.reach.members, heard, dropped)

    # -- playout thread ----------------------------------------------------------------------
    def members(self, zones: Sequence[str], priority: str) -> tuple[Cluster, ...]:
        """The clusters a broadcast to ``zones`` is for (an emergency: every one)."""
        roster = {c.id: c for c in self._roster()}
        for cid in self.settings.everywhere:
            roster.setdefault(cid, Cluster(cid))
        if priority == "emergency":
            for cid in self._clients:  # every client snapserver knows, registered or not
                roster.setdefault(cid, Cluster(cid))
            return tuple(roster.values())
        every = "all" in zones
        return tuple(
            c
            for c in roster.values()
            if c.id in self.settings.everywhere or every or (c.zone is not None and c.zone in zones)
        )

    def reach(self, zones: Sequence[str], priority: str = "normal") -> Reach:
        """Which clusters of ``zones`` Snapcast reaches now (asks snapserver)."""
        error = None
        try:
            self._refresh()
        except SnapcastError as e:
            error = str(e)
            self._clients = {}
        members = self.members(zones, priority)
        connected = frozenset(
            c.id for c in members if (sc := self._clients.get(c.id)) is not None and sc.connected
        )
        return Reach(members, connected, error)

    def open(self, zones: Sequence[str], priority: str, *, for_s: float) -> Reach:
        """Route the broadcast's clusters in, the others out, and switch their amplifiers
        on (their node agents cap it at ``for_s``)."""
        reach = self.reach(zones, priority)
        emergency = priority == "emergency"
        volume = self.settings.emergency_volume if emergency else self.settings.volume
        with self._lock:
            self._session = _Session(reach, volume, seen=set(reach.connected))
        self._route_now()
        for c in reach.members:
            self._command(c.id, {"amp": "on", "for_s": round(for_s, 1), "volume": volume})
        if reach.missing:
            log.warning("broadcast: %s", reach.note())
        return reach

    def audio_done(self) -> None:
        """The audio has left every cluster: amplifiers off (after the node's tail), every
        client muted again."""
        with self._lock:
            s = self._session
        if s is None:
            return
        for c in s.reach.members:
            self._command(c.id, {"amp": "off", "tail_s": self.settings.amp_tail_s})
        with self._lock:
            if self._session is s:
                s.volume = -1  # routed out: the watch mutes them all from now
        self._route_now()

    def close(self) -> str | None:
        """End the session: the note for the log; an alert for each cluster that missed
        (part of) it. None when no session was open."""
        with self._lock:
            s, self._session = self._session, None
        if s is None:
            return None
        self._route_now()
        members = s.reach.members
        heard = [c for c in members if c.id in s.seen and c.id not in s.lost]
        dropped = [c for c in members if c.id in s.lost]
        note = _note(members, heard, dropped)
        self.last_note = note
        heard_ids = {c.id for c in heard}
        for c in members:
            if c.id not in heard_ids and c.id not in self._raised:
                why = "lost during it" if c.id in s.lost else "not connected"
                name = f" {c.name}" if c.name and c.name != c.id else ""
                self._raised[c.id] = self._alerts.raise_(
                    RULE, "warning", f"{c.id}: the speaker cluster{name} missed a broadcast ({why})"
                )
        self._wake.set()  # a cluster back already has its alert cleared at once
        return note

    # -- snapcast-rpc thread: record and hand over -------------------------------------------
    def _notified(self, method: str, params: Mapping[str, Any]) -> None:
        cid = str(params.get("id", ""))
        with self._lock:
            s = self._session
            if s is not None and cid and any(c.id == cid for c in s.reach.members):
                if method == "Client.OnDisconnect":
                    s.lost.add(cid)
                elif method == "Client.OnConnect":
                    s.seen.add(cid)
        self._wake.set()

    def _wake_up(self) -> None:
        self._wake.set()

    # -- cluster-watch thread ----------------------------------------------------------------
    def _watch(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.settings.poll_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self._refresh()
                self._route()
            except SnapcastError as e:
                log.debug("cluster watch: %s", e)
                continue
            for cid in [c for c, sc in self._clients.items() if sc.connected]:
                raised = self._raised.pop(cid, None)
                if raised is not None:
                    self._alerts.clear(raised)

    # -- any of the two threads --------------------------------------------------------------
    def _refresh(self) -> None:
        clients = self.control.status()
        with self._lock:
            s = self._session
            if s is not None:
                for c in s.reach.members:
                    sc = clients.get(c.id)
                    if sc is not None and sc.connected:
                        s.seen.add(c.id)
                    elif c.id in s.seen:
                        s.lost.add(c.id)
        self._clients = clients

    def _route_now(self) -> None:
        """Route from the playout thread: snapserver down is logged (the watch retries)."""
        try:
            self._route()
        except SnapcastError as e:
            log.warning("routing the speaker clusters: %s", e)

    def _route(self) -> None:
        """Every client as the session wants it: members unmuted at its volume, the rest
        muted. Only what differs is sent; the first failure ends the pass (snapserver is
        down, the next pass retries)."""
        with self._lock:
            s = self._session
            wanted = {c.id for c in s.reach.members} if s is not None and s.volume >= 0 else set()
            volume = s.volume if s is not None else 0
        for cid, sc in list(self._clients.items()):
            if not sc.connected:
                continue
            if cid in wanted:
                if sc.muted or sc.volume != volume:
                    self.control.set_volume(cid, muted=False, percent=volume)
                if sc.stream != self.settings.stream and sc.group:
                    self.control.set_stream(sc.group, self.settings.stream)
            elif not sc.muted:
                self.control.set_volume(cid, muted=True)
            self._clients[cid] = SnapClient(
                cid,
                True,
                cid not in wanted,
                volume if cid in wanted else sc.volume,
                sc.group,
                self.settings.stream if cid in wanted else sc.stream,
            )

    def _command(self, cid: str, body: dict[str, Any]) -> None:
        topic = f"village/{self.site}/speaker/{cid}/cmd"
        try:
            self._publish(topic, json.dumps(body, separators=(",", ":")).encode(), False)
        except Exception:
            log.exception("cannot send %s to the speaker cluster %s", body.get("amp"), cid)


# -- wiring (build_hub) ------------------------------------------------------------------------


class _DeviceRow(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def zone(self) -> str: ...


class _DeviceList(Protocol):
    def query(self, kind: str | None = None, status: str | None = None) -> Sequence[Any]: ...


def roster_from(devices: _DeviceList) -> Callable[[], list[Cluster]]:
    """The clusters: every ``speaker`` device with the name and zone in force."""

    def roster() -> list[Cluster]:
        rows: Sequence[_DeviceRow] = devices.query("speaker")
        return [Cluster(d.id, d.name, d.zone or None) for d in rows]

    return roster


def open_cluster_alerts(store: Store) -> list[AlertChange]:
    """The ``cluster_missed`` alerts a previous run left open (adopted at start)."""
    conn = store.connection()
    out = []
    for a in alert_rows.alerts(conn, state="raised", device_id=HUB):
        if a.rule == RULE:
            full = alert_rows.get(conn, a.id)
            if full is not None:
                out.append(full)
    return out


def cluster_sink(s: ClusterSettings, local: Sink | None, clock: Callable[[], datetime]) -> Sink:
    """The broadcast sink with clusters: snapserver's stream, with ``local`` beside it."""
    return make_sink(
        "snapcast",
        host=s.host,
        port=s.source_port,
        rate=s.rate,
        channels=s.channels,
        buffer_ms=s.buffer_ms,
        local=local if s.local_sink else None,
        clock=clock,
    )
