"""Runs left RUNNING by a gbreg process that is gone: marked FAILED, with the cause when it is known.

A process killed outright leaves its runs RUNNING; the next run of a study on the same host finds them
(the pid and host tags) and marks them FAILED, "the gbreg process that ran it died". A process that stopped
on an error but could not mark its runs (the tracking store did not answer) leaves a note of that error
on its machine first, so the runs then get the error they stopped on, not a death.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from pathlib import Path

from gbreg.tracking.processes import gbreg_process_alive
from gbreg.tracking.store import retrying
from gbreg.tracking.tracker import TAG_ERROR, TAG_HOST, TAG_KIND, TAG_PARENT, TAG_PID


def mark_dead_runs_failed(client, experiment_id: str, stopped: list[str] | None = None) -> dict[str, int]:
    """Runs left RUNNING by a gbreg process on this host that no longer exists become FAILED. Returns how
    many of each kind (``trial``, ``study``, ``suite``).

    A process that stopped on an error and could not mark its runs FAILED (the store did not answer) left
    a note of that error on this machine (:func:`note_unmarked_runs`): its runs get that error, not "died";
    ``stopped``, if given, receives each such error once."""
    host = socket.gethostname()
    runs = retrying(lambda: client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'",
                                               max_results=5000))
    marked: dict[str, int] = {}
    notes_used: set[Path] = set()
    for run in runs:
        tags = run.data.tags
        if tags.get(TAG_HOST) != host or not tags.get(TAG_PID, "").isdigit():
            continue
        # a resumed parent carries the pid of the process that resumed it, not of the one that created it
        created_by_pid = tags.get(TAG_KIND) not in ("study", "suite")
        if gbreg_process_alive(int(tags[TAG_PID]), left_at=run.info.start_time / 1000 if created_by_pid else None):
            continue
        parent_id = run.info.run_id if tags.get(TAG_KIND) == "study" else tags.get(TAG_PARENT)
        note = _stop_note_path(tags[TAG_PID], parent_id) if parent_id else None
        cause = _read_note(note) if note is not None else None
        if cause:
            error = (f"{cause}; its gbreg process (pid {tags[TAG_PID]}) stopped on this error and could not mark "
                     "the run FAILED then (the tracking store did not answer)")
            if stopped is not None and note not in notes_used:
                stopped.append(cause)
            notes_used.add(note)
        else:
            error = "the gbreg process that ran it died"
        retrying(lambda: client.set_terminated(run.info.run_id, status="FAILED"))
        retrying(lambda: client.set_tag(run.info.run_id, TAG_ERROR, error[:5000]))
        kind = "trial" if created_by_pid else tags[TAG_KIND]
        marked[kind] = marked.get(kind, 0) + 1
    for note in notes_used:
        note.unlink(missing_ok=True)
    return marked


STOP_NOTES_FOLDER = "gbreg-stopped-runs"  # + the user id, in the temp folder
STOP_NOTE_DAYS = 30  # a note older than this is removed when another is written


def _stop_notes() -> Path:
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"{STOP_NOTES_FOLDER}-{uid}"


def _stop_note_path(pid, parent_run_id: str) -> Path:
    return _stop_notes() / f"{pid}-{parent_run_id}.txt"


def _read_note(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def note_unmarked_runs(parent_run_id: str | None, cause: str) -> None:
    """This process stops on ``cause`` and could not mark its runs of study run ``parent_run_id`` FAILED
    (the store did not answer): a note on this machine, so that the next run that marks them records the
    error they stopped on (:func:`mark_dead_runs_failed`) rather than a death. Best effort."""
    if not parent_run_id:
        return
    try:
        folder = _stop_notes()
        folder.mkdir(mode=0o700, exist_ok=True)
        _stop_note_path(os.getpid(), parent_run_id).write_text(cause, encoding="utf-8")
        old = time.time() - STOP_NOTE_DAYS * 86400  # notes whose runs no study ever marked (deleted, elsewhere)
        for note in folder.glob("*.txt"):
            if note.stat().st_mtime < old:
                note.unlink(missing_ok=True)
    except OSError:
        pass
