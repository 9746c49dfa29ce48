"""Measurement: performance metrics, reach, invalid-traffic filtering, lift, reports."""
