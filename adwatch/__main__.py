"""``python -m adwatch``: the same as the ``adwatch`` command."""

from adwatch.cli import main

main()
