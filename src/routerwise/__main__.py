"""``python -m routerwise`` runs the CLI."""

from routerwise.cli.app import main

main()
