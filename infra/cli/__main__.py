"""``python -m infra.cli`` runs the ``lvlup`` command."""

from infra.cli import main

main()
