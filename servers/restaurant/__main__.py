"""`python -m envfarm.servers.restaurant` serves the restaurant environment (= `envfarm serve restaurant`)."""

import sys

from envfarm.cli import main

main(["serve", "restaurant", *sys.argv[1:]])
