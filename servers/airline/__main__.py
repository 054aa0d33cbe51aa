"""`python -m envfarm.servers.airline` serves the airline environment (= `envfarm serve airline`)."""

import sys

from envfarm.cli import main

main(["serve", "airline", *sys.argv[1:]])
