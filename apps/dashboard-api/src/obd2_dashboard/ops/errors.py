"""The operator commands' failure and exit codes, below both the CLI and the commands.

The commands raise ``CommandError``; the CLI (``obd2_dashboard.cli``) turns it into one line on
stderr and exit 1. Living here rather than in the CLI keeps every import pointing downwards:
the CLI imports the commands, never the other way round.
"""

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class CommandError(Exception):
    """A failure the command explains in one line (exit 1)."""
