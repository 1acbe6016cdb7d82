"""How a study meets the process it runs in.

The library touches nothing process-wide: called from a notebook, a service or a thread, a study leaves
the signal handlers, the garbage collector and ``sys.unraisablehook`` as they were. Ctrl-C reaches it
as Python's own KeyboardInterrupt, and the sweep stops cleanly on that. The command line passes a
:class:`gbreg.cli_process.ProcessRunControl` instead, which owns the process and tunes it.
"""

from __future__ import annotations

import contextlib

# Redirecting file descriptors 1 and 2 changes the whole process, so the library does it only in a
# process gbreg owns: the command line says so for its own process, and the spawned workers are gbreg's.
# Anywhere else (a notebook, a service) a library's native "[Fatal]" line is left on the caller's output.
_OWNS_PROCESS_OUTPUT = False


def own_process_output() -> None:
    """Called by the owner of this process (the CLI, a worker initializer): gbreg may silence the boosting
    libraries' native output while it provokes their errors (the library check)."""
    global _OWNS_PROCESS_OUTPUT
    _OWNS_PROCESS_OUTPUT = True


def owns_process_output() -> bool:
    return _OWNS_PROCESS_OUTPUT


class RunControl:
    """The library's default: nothing installed, nothing tuned; a stop is a KeyboardInterrupt."""

    requested = False  # a stop was asked for (by a signal handler the owner of the process installed)

    def sweep_starts(self) -> None:
        """The trials are about to be handed out."""

    def sweep_ends(self) -> None:
        """The sweep is over, however it ended."""

    def check(self) -> None:
        """Raise KeyboardInterrupt if a stop was asked for and swallowed on its way (see the CLI's)."""
        if self.requested:
            raise KeyboardInterrupt

    def shielded(self):
        """A context in which the runs of a stopped study are marked, not to be cut short."""
        return contextlib.nullcontext()
