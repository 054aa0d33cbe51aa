"""`python -m envfarm.servers.car_rental` serves the car rental environment (= `envfarm serve car_rental`)."""

import sys

from envfarm.cli import main

main(["serve", "car_rental", *sys.argv[1:]])
