"""``python -m convcalc …`` runs the ``convcalc`` command."""

from .cli import main

main(prog_name="convcalc")
