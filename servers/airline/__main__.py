"""`python -m envfarm.servers.airline` serves the airline environment (= `envfarm serve airline`)."""

import sys

from envfarm.core.environments import serve_alone

serve_alone("airline", sys.argv[1:])
