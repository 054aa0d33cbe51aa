"""`python -m envfarm.servers.helpdesk` serves the helpdesk environment (= `envfarm serve helpdesk`)."""

import sys

from envfarm.core.environments import serve_alone

serve_alone("helpdesk", sys.argv[1:])
