"""The store writer thread of a study: order kept, everything waiting written together, errors raised in
the caller's thread, and nothing reported written before it is."""

from __future__ import annotations

import threading

import pytest

from gbreg.tracking.group_commit import GroupCommitWriter


class Store:
    """Batches as written; the first batch can be held until the test lets it go."""

    def __init__(self, hold_first: bool = False, fail_on: object = None):
        self.batches: list[list] = []
        self.writing = threading.Event()
        self.release = threading.Event()
        if not hold_first:
            self.release.set()
        self.fail_on = fail_on

    def write(self, batch: list) -> None:
        self.writing.set()
        self.release.wait()
        if self.fail_on in batch:
            raise OSError(f"disk full at {self.fail_on}")
        self.batches.append(list(batch))


def test_writes_queued_while_one_is_written_share_the_next_batch_in_order() -> None:
    store = Store(hold_first=True)
    writer = GroupCommitWriter(store.write)
    writer.submit(0)
    store.writing.wait()  # the first write is under way: the next ones queue behind it
    for item in range(1, 6):
        writer.submit(item)
    store.release.set()
    writer.settle()
    assert store.batches == [[0], [1, 2, 3, 4, 5]]
    writer.stop()


def test_settle_returns_only_once_everything_before_it_is_written() -> None:
    store = Store(hold_first=True)
    writer = GroupCommitWriter(store.write)
    writer.submit("open")
    writer.submit("close")
    settled = threading.Event()
    waiter = threading.Thread(target=lambda: (writer.settle(), settled.set()))
    waiter.start()
    store.writing.wait()
    assert not settled.is_set() and store.batches == []  # held: nothing written, nothing settled
    store.release.set()
    waiter.join()
    assert settled.is_set() and [item for batch in store.batches for item in batch] == ["open", "close"]
    writer.stop()


def test_an_error_of_the_writer_is_raised_once_in_the_callers_thread_and_later_writes_go_on() -> None:
    store = Store(fail_on="bad")
    writer = GroupCommitWriter(store.write)
    writer.submit("bad")
    with pytest.raises(OSError, match="disk full at bad"):
        writer.settle()
    writer.settle()  # raised once: the caller can now mark its runs through another path
    writer.submit("good")
    writer.stop()
    assert store.batches == [["good"]]


def test_stop_ends_the_thread_and_a_later_submit_starts_a_new_one() -> None:
    store = Store()
    writer = GroupCommitWriter(store.write, name="gbreg-test-writer")
    writer.submit(1)
    writer.stop()
    assert store.batches == [[1]]
    assert "gbreg-test-writer" not in {thread.name for thread in threading.enumerate()}
    writer.submit(2)
    writer.stop()
    assert store.batches == [[1], [2]]


def test_settle_without_any_write_starts_no_thread() -> None:
    before = threading.active_count()
    writer = GroupCommitWriter(Store().write)
    writer.settle()
    writer.stop()
    assert threading.active_count() == before


def test_a_write_waits_for_more_to_share_its_commit_until_someone_needs_the_store() -> None:
    store = Store()
    writer = GroupCommitWriter(store.write, linger=3600)  # only a settle or a stop can end the wait
    writer.submit("open")
    writer.submit("close")
    assert not store.writing.wait(0.3)  # lingering: nothing written yet, however long one waited
    writer.settle()  # returns at once, with both in one commit
    assert store.batches == [["open", "close"]]
    writer.submit("next")
    writer.stop()
    assert store.batches == [["open", "close"], ["next"]]
