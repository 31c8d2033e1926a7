"""The residents' side: announcements, the feed, the calendar, feedback."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
