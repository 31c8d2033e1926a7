"""Automation stage: event rules and the notifications they send."""
