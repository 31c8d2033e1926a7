"""Làng Số Hub: the village hub service (MQTT in, health and announcements out)."""

__version__ = "0.1.0"
