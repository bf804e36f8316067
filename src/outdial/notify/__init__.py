"""Notifications to the customer's systems: push report delivery."""
