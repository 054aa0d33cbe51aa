"""`python -m envfarm.servers.car_rental` serves the car_rental environment (= `envfarm serve car_rental`)."""

import sys

from envfarm.core.environments import serve_alone

serve_alone("car_rental", sys.argv[1:])
