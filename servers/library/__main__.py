"""`python -m envfarm.servers.library` serves the library environment (= `envfarm serve library`)."""

import sys

from envfarm.core.environments import serve_alone

serve_alone("library", sys.argv[1:])
