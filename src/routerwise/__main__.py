"""``python -m routerwise`` runs the CLI through the same entry point as the console script."""

from routerwise.cli.app import main

if __name__ == "__main__":
    main()
