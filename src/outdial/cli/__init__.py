"""The ``outdial`` command line."""
