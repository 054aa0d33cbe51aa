"""`python -m envfarm.servers.hr_leave` serves the HR leave environment (= `envfarm serve hr_leave`)."""

import sys

from envfarm.cli import main

main(["serve", "hr_leave", *sys.argv[1:]])
