"""Devices: wire-format adapters, GPIO parts and the village simulator (no hub imports)."""
