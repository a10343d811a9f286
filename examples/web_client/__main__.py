"""`python -m examples.web_client` (settings from the environment; see README.md)."""

from examples.web_client.app import main

main()
