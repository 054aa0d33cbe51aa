"""`python -m envfarm.servers.tau2_airline` serves tau2-bench's airline domain (= `envfarm serve tau2_airline`)."""

import sys

from envfarm.core.environments import serve_alone

serve_alone("tau2_airline", sys.argv[1:])
