"""Carriers: the Carrier protocol and its implementations (sim: simulated network)."""
