"""Is the gbreg process that left something behind (a RUNNING run, a context file) still alive?"""

from __future__ import annotations

import os
from pathlib import Path


def gbreg_process_alive(pid: int) -> bool:
    """True unless ``pid`` is gone or has been recycled by a process that is not Python (Linux /proc)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():  # a recycled pid that is not a Python process is not ours
        try:
            command = cmdline.read_bytes()
        except OSError:
            return True
        return b"python" in command or b"gbreg" in command
    return True
