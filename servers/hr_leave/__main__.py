"""`python -m envfarm.servers.hr_leave` serves the hr_leave environment (= `envfarm serve hr_leave`)."""

import sys

from envfarm.core.environments import serve_alone

serve_alone("hr_leave", sys.argv[1:])
