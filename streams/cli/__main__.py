"""``python -m streams.cli`` runs the ``lvlup`` command."""

from streams.cli import main

main()
