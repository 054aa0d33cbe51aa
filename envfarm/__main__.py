"""`python -m envfarm` runs the CLI."""

from envfarm.cli import main

main()
