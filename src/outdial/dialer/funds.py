"""The funds rule, applied where calls start and after charges are written."""

from __future__ import annotations

import logging

from outdial.domain.billing import OUT_OF_FUNDS_REASON, may_dial
from outdial.store.repo import Tx

log = logging.getLogger(__name__)


def suspend_if_out_of_funds(tx: Tx, account_id: int, min_balance: int, now_ms: int) -> bool:
    """Suspend the account's waiting and calling tasks when its funds are below the minimum;
    return True when they are (no call may start)."""
    if may_dial(tx.funds(account_id), min_balance):
        return False
    paused = tx.suspend_account_tasks(account_id, OUT_OF_FUNDS_REASON, now_ms)
    if paused:
        log.warning(
            "balance exhausted; tasks suspended", extra={"account_id": account_id, "tasks": paused}
        )
    return True
