"""`python -m tessera` is the `tessera` command."""

from tessera.cli.main import app

app()
