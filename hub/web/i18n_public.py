"""Words of the residents' side (announcements, feed, calendar, feedback): vi and en."""

from __future__ import annotations

VI: dict[str, str] = {}

EN: dict[str, str] = {}
