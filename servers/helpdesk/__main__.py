"""`python -m envfarm.servers.helpdesk` serves the helpdesk environment (= `envfarm serve helpdesk`)."""

import sys

from envfarm.cli import main

main(["serve", "helpdesk", *sys.argv[1:]])
