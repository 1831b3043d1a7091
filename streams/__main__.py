"""``python -m streams`` runs the ``lvlup`` command."""

from streams.cli import main

main()
