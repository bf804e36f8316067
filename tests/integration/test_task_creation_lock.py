"""Task creation on one account is serialised without the account row the dialer locks to
count lines (PostgreSQL: an advisory lock; SQLite: the write transaction)."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from outdial.store.repo import Store
from outdial.testing import FakeClock, make_account


def test_a_submission_in_progress_does_not_hold_up_the_dialer(fresh_pg_url: str) -> None:
    store = Store.open(fresh_pg_url)
    try:
        acc = make_account(store, FakeClock(), name="busy")
        with store.write() as submitting:
            assert submitting.account_for_new_task(acc.account_id) is not None
            with store.write() as dialer:
                dialer.conn.exec_driver_sql("SET LOCAL lock_timeout = '2s'")
                dialer.lock_accounts([acc.account_id])  # would time out behind a row lock
                counts = dialer.dialing_by_task([acc.account_id])
            assert counts.get(acc.account_id, {}) == {}
    finally:
        store.close()


def test_two_submissions_to_one_account_take_turns(fresh_pg_url: str) -> None:
    store = Store.open(fresh_pg_url)
    try:
        acc = make_account(store, FakeClock(), name="turns")
        other = make_account(store, FakeClock(), name="other")
        with store.write() as first:
            first.account_for_new_task(acc.account_id)
            with store.write() as elsewhere:  # another account is not held up
                assert elsewhere.account_for_new_task(other.account_id) is not None
            with pytest.raises(OperationalError, match="lock timeout"), store.write() as second:
                second.conn.exec_driver_sql("SET LOCAL lock_timeout = '200ms'")
                second.account_for_new_task(acc.account_id)
    finally:
        store.close()
