"""``python -m infra`` runs the ``lvlup`` command."""

from infra.cli import main

main()
