"""``python -m minimrcnn ...`` runs the ``minimrcnn`` command (see minimrcnn/cli.py)."""

import sys

from minimrcnn.cli import main

sys.exit(main())
