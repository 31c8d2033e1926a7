"""The residents' side of the web: their pages, the poster, the feed and calendar, the form.

No sign-in, Vietnamese first. Each part is a module of its own; this router gathers them
for :func:`hub.web.mount_web`.
"""

from __future__ import annotations

from fastapi import APIRouter

from hub.web import feed, feedback_form, follow, poster, public_pages

router = APIRouter(include_in_schema=False)
for part in (public_pages, poster, feed, feedback_form, follow):
    router.include_router(part.router)
