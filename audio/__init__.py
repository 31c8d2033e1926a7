"""Audio: text-to-speech, rendering and sinks (imports nothing from hub)."""
