"""The console over HTTP (no browser): sign-in, sessions, CSRF, throttling, tenancy, pages."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from outdial.api.app import create_app
from outdial.config import Settings
from outdial.console.app import install
from outdial.service.operators import FREE_FAILURES, OperatorService
from outdial.store.repo import Store
from outdial.testing import FakeClock
from tests.console.seed import PASSWORD, Seeded, seed


@pytest.fixture
def world(
    store: Store, clock: FakeClock, settings: Settings, tmp_path: Path
) -> Iterator[tuple[TestClient, Seeded, Any]]:
    s = settings.model_copy(update={"recordings_dir": str(tmp_path / "rec")})
    app = create_app(s, store, clock)
    console = install(app, s, store, clock)
    with TestClient(app, base_url="http://testserver") as client:
        data = seed(client, store, clock, tmp_path / "rec", secrets.token_hex(3))
        yield client, data, console


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def login(client: TestClient, username: str, password: str = PASSWORD) -> Any:
    page = client.get("/console/login")
    return client.post(
        "/console/login",
        data={
            "csrf": _csrf(page.text),
            "username": username,
            "password": password,
            "next": "/console/",
        },
        follow_redirects=False,
    )


def test_pages_need_a_session(world: Any) -> None:
    client, _, _ = world
    resp = client.get("/console/campaigns", follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"].startswith("/console/login?next=")


def test_sign_in_sets_a_signed_httponly_samesite_cookie(world: Any) -> None:
    client, data, _ = world
    resp = login(client, data.admin)
    assert resp.status_code == 303
    cookie = resp.headers["set-cookie"]
    assert "od_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert client.get("/console/").status_code == 200
    # A tampered cookie is no session.
    value = client.cookies.get("od_session")
    client.cookies.clear()
    client.cookies.set("od_session", value[:-2] + ("AA" if value[-2:] != "AA" else "BB"))
    assert client.get("/console/", follow_redirects=False).status_code == 303


def test_wrong_password_and_throttling(world: Any, clock: FakeClock) -> None:
    client, data, _ = world
    for _ in range(FREE_FAILURES):
        resp = login(client, data.user, "wrong password!")
        assert resp.status_code == 401
        assert "wrong username or password" in resp.text
    # Locked now, even with the right password, until the lock passes.
    resp = login(client, data.user)
    assert resp.status_code == 429
    assert "too many failed sign-ins" in resp.text
    clock.advance(seconds=31)
    assert login(client, data.user).status_code == 303


def test_unknown_user_answers_like_a_wrong_password(world: Any) -> None:
    client, _, _ = world
    resp = login(client, "nobody-here")
    assert resp.status_code == 401 and "wrong username or password" in resp.text


def test_login_without_its_csrf_token_is_refused(world: Any) -> None:
    client, data, _ = world
    client.get("/console/login")
    resp = client.post(
        "/console/login", data={"csrf": "forged", "username": data.admin, "password": PASSWORD}
    )
    assert resp.status_code == 400 and "od_session" not in client.cookies


def test_every_post_needs_the_sessions_csrf_token(world: Any) -> None:
    client, data, _ = world
    login(client, data.admin)
    url = f"/console/campaigns/{data.task_id}/pause"
    resp = client.post(url, data={"csrf": "x", "confirm": "yes"})
    assert resp.status_code == 403
    assert client.post("/console/logout", data={}).status_code == 403


def test_pause_asks_for_confirmation_then_pauses_and_resumes(world: Any) -> None:
    client, data, _ = world
    login(client, data.user)
    page = client.get(f"/console/campaigns/{data.task_id}")
    assert page.status_code == 200 and "Funnel" in page.text
    token = _csrf(page.text)
    url = f"/console/campaigns/{data.task_id}/pause"
    ask = client.post(url, data={"csrf": token})
    assert ask.status_code == 200 and "Yes, pause" in ask.text
    done = client.post(url, data={"csrf": token, "confirm": "yes"})
    assert done.status_code == 200 and "Campaign paused." in done.text
    assert ">paused<" in done.text
    done = client.post(
        f"/console/campaigns/{data.task_id}/resume", data={"csrf": token, "confirm": "yes"}
    )
    assert "Campaign resumed." in done.text and ">calling<" in done.text
    # Resuming what is not paused is a clear message, not a stack trace.
    again = client.post(
        f"/console/campaigns/{data.task_id}/resume", data={"csrf": token, "confirm": "yes"}
    )
    assert again.status_code == 409 and "cannot be resumed" in again.text


def test_an_account_user_sees_only_its_account(world: Any) -> None:
    client, data, _ = world
    login(client, data.user)
    listing = client.get("/console/campaigns").text
    assert "spring-" in listing and "secret-" not in listing
    for url in (
        f"/console/campaigns/{data.other_task_id}",
        f"/console/calls/{data.other_call}",
        f"/console/campaigns/{data.other_task_id}/calls.csv",
    ):
        resp = client.get(url)
        assert resp.status_code == 404, url
        assert "does not exist" in resp.text
    token = _csrf(listing)
    resp = client.post(
        f"/console/campaigns/{data.other_task_id}/pause", data={"csrf": token, "confirm": "yes"}
    )
    assert resp.status_code == 404
    calls = client.get("/console/calls").text
    assert f'/console/calls/{data.other_call}"' not in calls


def test_an_admin_sees_every_account(world: Any) -> None:
    client, data, _ = world
    login(client, data.admin)
    assert client.get(f"/console/campaigns/{data.other_task_id}").status_code == 200
    assert client.get(f"/console/calls/{data.other_call}").status_code == 200


def test_calls_are_keyset_paged_and_filtered(world: Any) -> None:
    client, data, _ = world
    login(client, data.user)
    page = client.get(f"/console/calls?task={data.task_id}&outcome=busy").text
    ids = [int(i) for i in re.findall(r'/console/calls/(\d+)"', page)]
    assert ids and ids == sorted(ids, reverse=True)
    assert set(ids) == {c for i, c in enumerate(data.call_ids) if i % 3 == 2}
    # A page after the newest starts below the given id.
    older = client.get(f"/console/calls?task={data.task_id}&before={data.call_ids[4]}").text
    assert max(int(i) for i in re.findall(r'/console/calls/(\d+)"', older)) < data.call_ids[4]
    bad = client.get("/console/calls?min_duration=abc")
    assert bad.status_code == 400 and "is not a whole number" in bad.text


def test_call_page_shows_the_chat_and_serves_the_recording_in_ranges(world: Any) -> None:
    client, data, _ = world
    login(client, data.user)
    page = client.get(f"/console/calls/{data.recorded_call}").text
    assert 'class="msg bot"' in page and "yes thanks" in page
    rec = client.get(
        f"/console/calls/{data.recorded_call}/recording", headers={"Range": "bytes=0-99"}
    )
    assert rec.status_code == 206 and len(rec.content) == 100
    assert rec.headers["content-type"] == "audio/wav"


def test_csv_export_has_one_row_per_call(world: Any) -> None:
    client, data, _ = world
    login(client, data.user)
    resp = client.get(f"/console/campaigns/{data.task_id}/calls.csv")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    lines = resp.text.strip().splitlines()
    assert lines[0].startswith("voiceId,taskId")
    assert len(lines) == 1 + len(data.call_ids)


def test_overview_is_one_snapshot_per_interval_for_every_viewer(
    world: Any, clock: FakeClock
) -> None:
    client, data, console = world
    login(client, data.admin)
    before = console.service.overview.computed
    for _ in range(5):
        assert client.get("/console/overview/live").status_code == 200
    assert console.service.overview.computed == before + 1
    clock.advance(seconds=6)
    client.get("/console/overview/live")
    assert console.service.overview.computed == before + 2


def test_sign_out_ends_the_session_and_a_password_change_ends_others(
    world: Any, store: Store, clock: FakeClock
) -> None:
    client, data, _ = world
    login(client, data.user)
    token = _csrf(client.get("/console/").text)
    cookie = client.cookies.get("od_session")
    assert (
        client.post("/console/logout", data={"csrf": token}, follow_redirects=False).status_code
        == 303
    )
    assert client.get("/console/", follow_redirects=False).status_code == 303
    # The copied cookie of the ended session no longer counts.
    client.cookies.clear()
    client.cookies.set("od_session", cookie)
    assert client.get("/console/", follow_redirects=False).status_code == 303
    # A password change ends every open session.
    login(client, data.user)
    assert client.get("/console/").status_code == 200
    OperatorService(store, clock).set_password(data.user, "another long password")
    assert client.get("/console/", follow_redirects=False).status_code == 303


def test_static_assets_ship_with_their_licences() -> None:
    from importlib import resources

    vendor = resources.files("outdial").joinpath("console/static/vendor")
    names = {p.name for p in vendor.iterdir()}
    assert {"htmx.min.js", "htmx.LICENSE", "uPlot.iife.min.js", "uPlot.LICENSE"} <= names


def test_campaign_counts_stay_right_as_calls_are_added(
    world: Any, store: Store, clock: FakeClock
) -> None:
    """The campaign's call tally is kept between views; calls written later (recent ones,
    which are not kept yet, and settled ones) are all counted exactly once."""
    from tests.console.seed import add_calls

    client, data, console = world
    login(client, data.user)

    def outcomes() -> dict[str, int]:
        return dict(console.service.campaign(data.acme.account_id, data.task_id)["funnel"].outcomes)

    assert outcomes() == {"connected": 6, "busy": 3}  # recent: shown, not kept
    clock.advance(seconds=120)
    assert outcomes() == {"connected": 6, "busy": 3}  # settled now: kept
    add_calls(store, clock, data.acme, data.task_id, 3, None)
    assert outcomes() == {"connected": 8, "busy": 4}
    clock.advance(seconds=120)
    assert outcomes() == {"connected": 8, "busy": 4}
    assert outcomes() == {"connected": 8, "busy": 4}


def test_an_unknown_console_address_is_a_page_not_json(world: Any) -> None:
    client, data, _ = world
    login(client, data.user)
    resp = client.get("/console/no-such-page")
    assert resp.status_code == 404 and "there is no console page" in resp.text
    assert resp.headers["content-type"].startswith("text/html")
    assert client.get("/console/campaigns/12abc").status_code == 400


def test_overview_shows_today_and_lines_in_use(world: Any) -> None:
    client, data, _ = world
    login(client, data.user)
    page = client.get("/console/").text
    today = re.search(r'id="stat-today">(\d+)<', page)
    assert today and int(today.group(1)) == len(data.call_ids)
    assert "Acme " in page and 'id="lines"' in page and "Other " not in page


def test_calls_filter_by_day(world: Any, clock: FakeClock) -> None:
    client, data, _ = world
    login(client, data.user)
    day = clock.now().strftime("%Y-%m-%d")
    page = client.get(f"/console/calls?task={data.task_id}&from={day}&to={day}").text
    assert len(re.findall(r'/console/calls/(\d+)"', page)) == len(data.call_ids)
    later = (clock.now() + timedelta(days=1)).strftime("%Y-%m-%d")
    page = client.get(f"/console/calls?task={data.task_id}&from={later}").text
    assert "No calls match." in page
    bad = client.get("/console/calls?from=yesterday")
    assert bad.status_code == 400 and "is not a date" in bad.text


def test_today_is_each_accounts_own_day(
    store: Store, clock: FakeClock, settings: Settings, tmp_path: Path
) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import update

    from outdial.clock import epoch_ms
    from outdial.service.console import OverviewCache
    from outdial.store import schema
    from outdial.testing import make_account
    from tests.console.seed import _task, add_calls

    app = create_app(settings, store, clock)
    with TestClient(app, base_url="http://testserver") as client:
        east = make_account(store, clock, name="East", timezone="Asia/Shanghai")
        west = make_account(store, clock, name="West", timezone="America/New_York")
        east_task = _task(client, store, clock, east, "east", 2)
        west_task = _task(client, store, clock, west, "west", 2)
    # 02:00 UTC on 3 December: 10:00 that day in Shanghai, 21:00 on 2 December in New York.
    now = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)
    clock.set(now)
    ended = {
        # Shanghai's day began at 16:00 UTC on the 2nd, New York's at 05:00 UTC on the 2nd.
        east_task: [datetime(2026, 12, 2, h, 0, tzinfo=UTC) for h in (17, 15)],
        west_task: [datetime(2026, 12, 2, h, 0, tzinfo=UTC) for h in (6, 4)],
    }
    for acc, task_id in ((east, east_task), (west, west_task)):
        ids = add_calls(store, clock, acc, task_id, 2, None)
        with store.write() as tx:
            for call_id, at in zip(ids, ended[task_id], strict=True):
                tx.conn.execute(
                    update(schema.calls)
                    .where(schema.calls.c.id == call_id)
                    .values(created_at=epoch_ms(at), answer_time=epoch_ms(at) - 5000)
                )
    cache = OverviewCache(store, clock)
    both = cache.get(None)
    # Every one of these calls ended before midnight UTC: a UTC "today" would count none.
    assert both.counts["today_calls"] == 2 and both.counts["today_answered"] == 2
    assert {"America/New_York", "Asia/Shanghai"} <= set(both.zones)
    one = cache.get(east.account_id)
    assert one.counts["today_calls"] == 1 and one.zones == ("Asia/Shanghai",)
    assert cache.get(west.account_id).counts["today_calls"] == 1
    # At 05:00 UTC New York's 3 December begins: its call of the 2nd no longer counts.
    clock.set(datetime(2026, 12, 3, 5, 0, tzinfo=UTC))
    assert OverviewCache(store, clock).get(west.account_id).counts["today_calls"] == 0


def test_template_funnel_counts_each_node_in_template_order(
    world: Any, store: Store, clock: FakeClock
) -> None:
    """The seeded calls walk seed.WALKS in turn: 6 answered, 3 busy (no path)."""
    from tests.console.seed import add_calls

    _, data, console = world

    def steps() -> dict[str, tuple[int, dict[str, int]]]:
        walk = console.service.campaign(None, data.task_id)["walk"]
        return {s.node: (s.reached, {k: v for k, v in s.ended.items() if v}) for s in walk.steps}

    first = console.service.campaign(None, data.task_id)["walk"]
    assert first.walked == 6
    assert [s.node for s in first.steps] == [
        "remind", "identify", "confirmed", "reschedule", "later", "opted_out", "goodbye"
    ]  # fmt: skip
    assert first.steps[0].reached_pct == 100.0
    assert steps() == {
        "remind": (6, {"callee": 1}),
        "identify": (1, {}),
        "confirmed": (3, {"bot": 3}),
        "reschedule": (1, {"callee": 1}),
        "later": (0, {}),
        "opted_out": (0, {}),
        "goodbye": (1, {"limit": 1}),
    }
    # Kept between views and extended by the calls written later, each counted once.
    clock.advance(seconds=120)
    steps()
    add_calls(store, clock, data.acme, data.task_id, 3, None)
    after = steps()
    assert after["remind"] == (8, {"callee": 1})
    assert after["confirmed"] == (5, {"bot": 5})
    assert after["identify"] == (2, {})
    clock.advance(seconds=120)
    assert steps() == after


def test_answer_rate_over_time_counts_attempts_and_answers_per_bucket(
    world: Any, store: Store, clock: FakeClock
) -> None:
    from tests.console.seed import add_calls

    _, data, console = world
    rate = console.service.campaign(None, data.task_id)["rate"]
    assert rate.bucket_minutes == 1
    assert sum(p.attempts for p in rate.points) == 9
    assert sum(p.answered for p in rate.points) == 6
    # Three hours later: the span now needs wider buckets, and the empty ones between are kept.
    clock.advance(seconds=3 * 3600)
    add_calls(store, clock, data.acme, data.task_id, 3, None)
    view = console.service.campaign(None, data.task_id)
    rate = view["rate"]
    assert rate.bucket_minutes == 5
    assert sum(p.attempts for p in rate.points) == 12
    assert sum(p.answered for p in rate.points) == 8
    assert any(p.attempts == 0 and p.rate is None for p in rate.points)
    assert rate.points[-1].attempts == 3 and rate.points[-1].rate == 66.7
    assert view["rate_points"][-1][1:] == [66.7, 3, 2]


def test_campaign_page_shows_the_template_funnel_and_the_rate_chart(world: Any) -> None:
    client, data, _ = world
    login(client, data.user)
    page = client.get(f"/console/campaigns/{data.task_id}").text
    assert 'id="template-funnel"' in page and 'data-node="identify"' in page
    assert "ended here: bot 3" in page
    assert 'id="rate-points"' in page


def test_resend_asks_for_confirmation_and_makes_a_child_campaign(world: Any) -> None:
    client, data, _ = world
    login(client, data.user)
    page = client.get(f"/console/campaigns/{data.task_id}").text
    token = _csrf(page)
    assert "action-resend-all" not in page  # only a finished or cancelled campaign
    # Calling again a campaign still calling is a clear message.
    early = client.post(
        f"/console/campaigns/{data.task_id}/resend-all", data={"csrf": token, "confirm": "yes"}
    )
    assert early.status_code == 409 and "can be called again" in early.text
    client.post(f"/console/campaigns/{data.task_id}/cancel", data={"csrf": token, "confirm": "yes"})
    page = client.get(f"/console/campaigns/{data.task_id}").text
    assert 'id="action-resend-not-connected"' in page
    url = f"/console/campaigns/{data.task_id}/resend-not-connected"
    ask = client.post(url, data={"csrf": token})
    assert ask.status_code == 200 and "Yes, resend not connected" in ask.text
    assert "were not connected" in ask.text
    done = client.post(url, data={"csrf": token, "confirm": "yes"})
    assert done.status_code == 200 and "Campaign sent again as a new campaign:" in done.text
    # 12 callees, 6 connected: the 6 others are called again, in a child listed on the page.
    child = re.search(r'id="made">([^<]+)<', done.text)
    assert child and child.group(1).endswith(" resend 1")
    rows = re.findall(r"<tr>\s*<td>resend</td>.*?</tr>", done.text, re.S)
    assert len(rows) == 1 and '<td class="num">6</td>' in rows[0]
    again = client.post(
        f"/console/campaigns/{data.task_id}/resend-all", data={"csrf": token, "confirm": "yes"}
    )
    assert re.search(r'id="made">[^<]+ resend 2<', again.text)
    assert len(re.findall(r"<td>resend</td>", again.text)) == 2


def test_an_account_user_cannot_resend_another_accounts_campaign(world: Any, store: Store) -> None:
    from sqlalchemy import func, select

    from outdial.store import schema

    client, data, _ = world
    login(client, data.user)
    token = _csrf(client.get("/console/campaigns").text)
    for confirm in ("", "yes"):
        resp = client.post(
            f"/console/campaigns/{data.other_task_id}/resend-all",
            data={"csrf": token, "confirm": confirm},
        )
        assert resp.status_code == 404 and "does not exist" in resp.text
    with store.read() as tx:
        children = tx.conn.execute(
            select(func.count()).where(schema.tasks.c.parent_task_id == data.other_task_id)
        ).scalar_one()
    assert children == 0
