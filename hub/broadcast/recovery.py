"""Broadcast stage, at start: what a dead hub left on air is logged ``interrupted``, and
replayed once as the settings say.

A crash, a kill or a power cut on air leaves the broadcast's as-run row ``playing``
(the playout writes it before the amplifier goes on). At the next start, before the
playout thread runs, each such row becomes ``interrupted`` with how far it got, and
:class:`BroadcastLogged` is published for it. An emergency is replayed at once, another
broadcast only within its grace window; a replay has its own row (its instant is the
restart's) that says what it replays, and is never replayed itself: three kills on air
give one replay, not three.

Threads: the building thread (``build_hub``), before any thread of the hub starts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from hub.broadcast.as_run import WRITE_ERRORS
from hub.broadcast.playout import Job, Playout
from hub.events import Broadcast, BroadcastLogged
from hub.store.announcements import Cut

log = logging.getLogger(__name__)


class LeftPlaying(Protocol):
    """What the recovery needs of the log (hub.store.announcements.BroadcastLog)."""

    def interrupt_left_playing(self) -> Sequence[Cut]: ...
    def logged(self, row_id: int) -> Broadcast | None: ...


def recover_interrupted(
    playout: Playout, log_: LeftPlaying, *, emergency: bool, others_within_s: float | None
) -> list[Job]:
    """Log what was cut and queue the replays (returned): an emergency if ``emergency``,
    another one if it was due less than ``others_within_s`` ago (None: never)."""
    now = playout.clock.now()
    replays: list[Job] = []
    try:
        cuts = log_.interrupt_left_playing()
    except WRITE_ERRORS as e:
        # A full SD card must not keep the hub (and the emergencies) down: the rows stay
        # ``playing`` and are looked at again at the next start.
        log.error("cannot log what a restart cut (%s): looked at again next start", e)
        return replays
    for cut in cuts:
        logged = log_.logged(cut.row_id)
        if logged is not None:
            playout.events.publish(BroadcastLogged(logged))
        log.warning(
            "the broadcast of %s due %s was cut by a restart (%s)",
            cut.announcement_id,
            cut.scheduled_for.isoformat(),
            logged.detail if logged is not None else "interrupted",
        )
        if cut.replay or not cut.render_wav or cut.announcement_status == "cancelled":
            continue
        if cut.priority == "emergency":
            if not emergency:
                continue
        elif others_within_s is None or (now - cut.scheduled_for).total_seconds() > (
            others_within_s
        ):
            continue
        # Its own instant (now): the cut occurrence keeps its row, the replay gets one.
        job = Job(
            cut.announcement_id,
            now,
            cut.priority,
            Path(cut.render_wav),
            cut.duration_s,
            cut.zones,
            cut.title,
            replay_of=cut.scheduled_for,
        )
        log.warning("replaying %s once", cut.announcement_id)
        replays.append(job)
        playout.submit(job)
    return replays
