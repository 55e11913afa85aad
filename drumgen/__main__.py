"""``python -m drumgen``: see :mod:`drumgen.cli`."""

from drumgen.cli import main

raise SystemExit(main())
