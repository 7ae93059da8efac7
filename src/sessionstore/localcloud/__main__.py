"""``python -m sessionstore.localcloud``: see :mod:`sessionstore.localcloud.command`."""

import sys

from sessionstore.localcloud.command import main

sys.exit(main())
