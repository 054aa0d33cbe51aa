"""`python -m envfarm.servers.warehouse` serves the warehouse environment (= `envfarm serve warehouse`)."""

import sys

from envfarm.cli import main

main(["serve", "warehouse", *sys.argv[1:]])
