"""Broadcast stage: announcements, their schedule, the playout."""
