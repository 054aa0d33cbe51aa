"""`python -m envfarm.servers.clinic` serves the clinic environment (= `envfarm serve clinic`)."""

import sys

from envfarm.core.environments import serve_alone

serve_alone("clinic", sys.argv[1:])
