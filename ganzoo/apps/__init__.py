"""One standard Hydra app per subcommand (`python -m ganzoo.apps.train <overrides>` runs one as
Hydra documents it). `ganzoo <command>` checks the command line first (cli.py), then starts
the app in its place."""
