"""`python -m envfarm.servers.restaurant` serves the restaurant environment (= `envfarm serve restaurant`)."""

import sys

from envfarm.core.environments import serve_alone

serve_alone("restaurant", sys.argv[1:])
