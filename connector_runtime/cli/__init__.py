"""The command line (``connector-runtime``): commands and exit codes (:mod:`.commands`), the
offline ``filter test`` (:mod:`.filter_check`), and ``new-plugin`` (:mod:`.scaffold`)."""

from connector_runtime.cli.commands import main

__all__ = ["main"]
