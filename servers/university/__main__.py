"""`python -m envfarm.servers.university` serves the university environment (= `envfarm serve university`)."""

import sys

from envfarm.cli import main

main(["serve", "university", *sys.argv[1:]])
