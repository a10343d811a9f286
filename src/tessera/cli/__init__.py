"""The `tessera` command line (Typer).

The CLI starts for every command, and most commands need little of Tessera (`tessera --help`,
`version`, `login`, `token`, `call`): its modules import at the top only what Typer needs to
build the commands (their parameters and help). The heavy imports (the configuration, the
store and SQLAlchemy, the management rules, the web app, httpx, `tessera.client`) live in the
commands and helpers that use them, and types for annotations only under `TYPE_CHECKING`.
"""
