"""`python -m envfarm.servers.bank` serves the bank environment (= `envfarm serve bank`)."""

import sys

from envfarm.cli import main

main(["serve", "bank", *sys.argv[1:]])
