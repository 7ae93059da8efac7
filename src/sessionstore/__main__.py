"""``python -m sessionstore``: the ``sessionstore`` command."""

from sessionstore.cli import main

raise SystemExit(main())
