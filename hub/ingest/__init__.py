"""Ingest stage: the MQTT link, the batch writer, device health, Home Assistant discovery."""
