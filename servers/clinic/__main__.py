"""`python -m envfarm.servers.clinic` serves the clinic environment (= `envfarm serve clinic`)."""

import sys

from envfarm.cli import main

main(["serve", "clinic", *sys.argv[1:]])
