"""The campaign's template funnel and answer-rate buckets, from grouped counts."""

from __future__ import annotations

import orjson

from outdial.service.campaign_stats import (
    MAX_BUCKETS,
    answer_rate,
    bucket_for,
    template_funnel,
)


def _walk(*nodes: str) -> str:
    return orjson.dumps(list(nodes)).decode()


def test_a_node_visited_twice_in_one_call_counts_once() -> None:
    funnel = template_funnel(["a", "b"], {(_walk("a", "b", "a", "b"), "bot"): 2})
    assert [(s.node, s.reached, s.ended["bot"]) for s in funnel.steps] == [("a", 2, 0), ("b", 2, 2)]


def test_nodes_the_template_lacks_come_last_and_odd_sides_are_other() -> None:
    funnel = template_funnel(
        ["a", "b"], {(_walk("a", "gone"), "media"): 1, (_walk("a"), "callee"): 3, ("oops", ""): 5}
    )
    assert funnel.walked == 4  # the unreadable path is left out
    assert [(s.node, s.in_template) for s in funnel.steps] == [
        ("a", True), ("b", True), ("gone", False)
    ]  # fmt: skip
    assert funnel.steps[2].ended == {"callee": 0, "bot": 0, "limit": 0, "other": 1}
    assert funnel.steps[0].reached_pct == 100.0 and funnel.steps[2].reached_pct == 25.0


def test_no_walks_is_an_empty_funnel() -> None:
    funnel = template_funnel(["a"], {})
    assert funnel.walked == 0 and funnel.steps[0].reached_pct == 0.0


def test_the_bucket_is_the_narrowest_that_fits_the_span() -> None:
    minute = 60000
    assert bucket_for(0) == 1
    assert bucket_for((MAX_BUCKETS - 1) * minute) == 1
    assert bucket_for(MAX_BUCKETS * minute) == 5
    assert bucket_for(30 * 24 * 60 * minute) == 720
    assert bucket_for(365 * 24 * 60 * minute) == 1440  # the widest, even past MAX_BUCKETS


def test_answer_rate_fills_the_empty_buckets_between() -> None:
    minute = 60000
    base = 1_700_000_000_000 // minute * minute
    rate = answer_rate({base: [4, 1], base + 3 * minute: [2, 2]})
    assert rate.bucket_minutes == 1
    assert [(p.attempts, p.rate) for p in rate.points] == [
        (4, 25.0), (0, None), (0, None), (2, 100.0)
    ]  # fmt: skip
    assert answer_rate({}).points == []


def test_node_order_is_the_start_then_the_files_order() -> None:
    from outdial.service.campaign_stats import node_order

    source = "start: b\nnodes:\n  c: {}\n  b: {}\n  a: {}\n"
    definition = orjson.dumps({"start": "b", "nodes": {"a": {}, "b": {}, "c": {}}}).decode()
    assert node_order(source, definition) == ["b", "c", "a"]
    assert node_order("not: [yaml", definition) == ["b", "a", "c"]  # sorted, start first
