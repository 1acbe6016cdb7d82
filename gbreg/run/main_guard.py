"""Refuse, before any process is spawned, a script that starts a study at import.

gbreg's worker processes are spawned (never forked: forking after XGBoost or LightGBM started their
OpenMP threads deadlocks). A spawned process imports the main script again, as ``__mp_main__``, so a
script that calls ``run_study`` outside ``if __name__ == "__main__":`` starts the study again in every
worker; each worker then dies in multiprocessing's bootstrapping check, and every trial would be logged
FAILED under a screen of tracebacks. The call can be seen from the main process: the script's own
module-level frame is on the stack, at a line that no ``if __name__ == "__main__":`` block holds.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from gbreg.errors import UserInputError


def check_main_guard() -> None:
    """Raise :class:`UserInputError` when the study was started by the main script's module-level code
    outside a ``__main__`` guard. Silent when that cannot be told (a notebook, ``python -c``, a thread, a
    script whose source cannot be read): the check only refuses what would certainly fail."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path or not _imported_again_by_spawn(main, path):
        return
    line = _module_level_line(main.__dict__)
    if line is None:
        return
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=path)
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return
    if not _inside_main_guard(tree, line):
        raise UserInputError(
            f"{path}, line {line}: the script starts a study when it is imported, and gbreg's worker processes "
            "import it again (they are spawned, not forked), so each would start the study anew. Put the "
            'study under `if __name__ == "__main__":` (see the README\'s "As a library").')


def _imported_again_by_spawn(main, path: str) -> bool:
    """Whether a spawned process runs the main module again, as multiprocessing.spawn decides: a package's
    ``__main__`` (``python -m gbreg``) and IPython's launcher are left alone; a script or ``-m module`` is rerun."""
    name = getattr(getattr(main, "__spec__", None), "name", None)
    if name is not None:
        return not (name == "__main__" or name.endswith(".__main__"))
    return Path(path).stem != "ipython"


def _module_level_line(main_globals: dict) -> int | None:
    """The line the main script's module-level code is running, if it is on this thread's stack."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_globals is main_globals and frame.f_code.co_name == "<module>":
            return frame.f_lineno
        frame = frame.f_back
    return None


def _inside_main_guard(tree: ast.Module, line: int) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _tests_main(node.test):
            last = max((getattr(child, "end_lineno", 0) or 0) for child in node.body)
            if node.body[0].lineno <= line <= last:
                return True
    return False


def _tests_main(test: ast.expr) -> bool:
    """``__name__ == "__main__"`` (either way round)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, *test.comparators]
    names = [side for side in sides if isinstance(side, ast.Name) and side.id == "__name__"]
    texts = [side for side in sides if isinstance(side, ast.Constant) and side.value == "__main__"]
    return len(names) == 1 and len(texts) == 1
