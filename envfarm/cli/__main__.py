"""`python -m envfarm.cli` runs the command line (as the tests and benchmarks start it)."""

from envfarm.cli import main

main()
