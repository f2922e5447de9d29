"""`python -m rblwatch`."""

from rblwatch import cli

raise SystemExit(cli.console())
