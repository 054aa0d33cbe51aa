"""`python -m envfarm.servers.library` serves the library environment (= `envfarm serve library`)."""

import sys

from envfarm.cli import main

main(["serve", "library", *sys.argv[1:]])
