"""Words of the staff's announcement pages (compose, schedule, history, rules): vi and en."""

from __future__ import annotations

VI: dict[str, str] = {}

EN: dict[str, str] = {}
