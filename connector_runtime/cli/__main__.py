"""``python -m connector_runtime.cli``: the same as the ``connector-runtime`` command."""

import sys

from connector_runtime.cli.commands import main

sys.exit(main())
