"""The `cairn` command, also usable as a kubectl plugin."""
