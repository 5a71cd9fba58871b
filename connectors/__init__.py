"""Twilio voice and SMS input channels for BAKAME (see connectors/README.md)."""
