"""`python -m envfarm.servers.bank` serves the bank environment (= `envfarm serve bank`)."""

import sys

from envfarm.core.environments import serve_alone

serve_alone("bank", sys.argv[1:])
