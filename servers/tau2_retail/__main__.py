"""`python -m envfarm.servers.tau2_retail` serves tau2-bench's retail domain (= `envfarm serve tau2_retail`)."""

import sys

from envfarm.core.environments import serve_alone

serve_alone("tau2_retail", sys.argv[1:])
