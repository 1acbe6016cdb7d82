"""Errors that reach the user.

    GbregError                 one line for the user, never a traceback; ``exit_code`` picks the status
     ├── UserInputError (2)    something the user can fix before anything runs
     │    ├── SpecError        a study spec (file, key path, what was expected)
     │    ├── DataError        a data set (file, column)
     │    └── TrackingError    the MLflow store cannot be reached or written
     └── StudyFailed (1)       the study ran but some trials failed

Lower-level errors from pandas, XGBoost, LightGBM and MLflow are translated with ``raise ... from exc``.
"""

from __future__ import annotations


class GbregError(Exception):
    exit_code = 1


class UserInputError(GbregError, ValueError):
    exit_code = 2


class SpecError(UserInputError):
    """A spec problem; ``problems`` holds one ``(key_path, message)`` per mistake."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        super().__init__(self._format())

    def __reduce__(self):  # rebuilt from its parts when it crosses a process boundary (a worker's job)
        return type(self), (self.source, self.problems)

    def _format(self) -> str:
        if len(self.problems) == 1:
            path, message = self.problems[0]
            where = f"{self.source}: {path}" if path else self.source
            return f"{where}: {message}"
        lines = [f"{self.source}: {len(self.problems)} problems"]
        lines += [f"  {path}: {message}" if path else f"  {message}" for path, message in self.problems]
        return "\n".join(lines)


class DataError(UserInputError):
    pass


class TrackingError(UserInputError):
    pass


class StudyFailed(GbregError):
    exit_code = 1
