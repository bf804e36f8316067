"""``python -m outdial`` runs the CLI."""

from outdial.cli.main import run

run()
