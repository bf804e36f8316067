"""The simulated timeline as a Clock: sim_now = sim_epoch + (base_now - real_epoch) * speed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from outdial.clock import SimTimeline
from outdial.testing import FakeClock

REAL = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_the_timeline_starts_at_its_epoch_and_runs_speed_times_faster() -> None:
    base = FakeClock(REAL)
    sim_epoch = REAL + timedelta(days=3)
    tl = SimTimeline(base, 30.0, REAL, sim_epoch)
    assert tl.now() == sim_epoch
    base.advance(12)
    assert tl.now() == sim_epoch + timedelta(seconds=360)
    base.advance(0.5)
    assert tl.now() == sim_epoch + timedelta(seconds=375)
    assert tl.sim_seconds(10) == 300


def test_timelines_with_the_same_anchor_agree_whenever_they_were_built() -> None:
    base = FakeClock(REAL)
    first = SimTimeline(base, 60.0, REAL, REAL)
    base.advance(7.25)
    second = SimTimeline(base, 60.0, REAL, REAL)
    assert first.now() == second.now() == REAL + timedelta(seconds=435)


def test_a_timeline_needs_a_positive_speed_and_aware_epochs() -> None:
    base = FakeClock(REAL)
    with pytest.raises(ValueError, match="speed"):
        SimTimeline(base, 0, REAL, REAL)
    with pytest.raises(ValueError, match="aware"):
        SimTimeline(base, 2, REAL.replace(tzinfo=None), REAL)
