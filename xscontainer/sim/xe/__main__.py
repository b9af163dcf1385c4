"""``python -m xscontainer.sim.xe``: what the testbed's ``xe`` wrapper runs."""

import sys

from xscontainer.sim.xe.session import main

sys.exit(main())
