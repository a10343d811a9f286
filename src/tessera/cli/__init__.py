"""The `tessera` command line (Typer)."""
