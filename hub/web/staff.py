"""The staff's side of the web, under ``/app/``: the dashboard, devices and alerts, compose,
the schedule, the as-run log, the rules, the residents' reports, the accounts.

Every page works without JavaScript (``static/staff.js`` adds the TTS preview, recording,
uploads and the live RRULE preview); every write is a form with the session's CSRF token
and goes through the same service as the JSON API, with its checks and audit. Each
section is a module of its own; this router gathers them for :func:`hub.web.mount_web`.
"""

from __future__ import annotations

from fastapi import APIRouter

from hub.web import (
    staff_announcement,
    staff_compose,
    staff_dashboard,
    staff_dead_letters,
    staff_devices,
    staff_history,
    staff_households,
    staff_inbox,
    staff_lexicon,
    staff_live,
    staff_rules,
    staff_schedule,
    staff_users,
)

router = APIRouter(include_in_schema=False)
for section in (
    staff_dashboard,
    staff_devices,
    staff_dead_letters,
    staff_compose,
    staff_live,
    staff_schedule,
    staff_announcement,
    staff_history,
    staff_rules,
    staff_inbox,
    staff_households,
    staff_lexicon,
    staff_users,
):
    router.include_router(section.router)
