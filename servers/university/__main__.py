"""`python -m envfarm.servers.university` serves the university environment (= `envfarm serve university`)."""

import sys

from envfarm.core.environments import serve_alone

serve_alone("university", sys.argv[1:])
