"""The LAAFFIC-compatible HTTP API."""
