"""Extra `healthpipe` sub-commands, each a module with `register(app)`; listed in cli.py."""
