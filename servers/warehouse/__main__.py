"""`python -m envfarm.servers.warehouse` serves the warehouse environment (= `envfarm serve warehouse`)."""

import sys

from envfarm.core.environments import serve_alone

serve_alone("warehouse", sys.argv[1:])
