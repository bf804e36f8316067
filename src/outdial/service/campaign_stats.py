"""A campaign's template funnel and answer rate over time, from its call tally.

Both are computed from counts the store already grouped (walks through the template, calls
per minute), so their cost depends on how many distinct walks and minutes there are, never
on how many calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import orjson
import yaml

# Who ended an answered call. The carriers name more sides (the SIP stack's "media" and
# "session", the dialer's "system"); the console shows those three and "other".
END_SIDES = ("callee", "bot", "limit")

# Bucket widths (minutes) an answer-rate chart may use: the narrowest that keeps the chart
# at or under MAX_BUCKETS points over the campaign's span.
BUCKET_MINUTES = (1, 5, 10, 15, 30, 60, 180, 360, 720, 1440)
MAX_BUCKETS = 120


def node_order(source: str, definition: str) -> list[str]:
    """A template's nodes: the start node, then the others in the order its file gives them
    (the stored definition's keys are sorted, so the order comes from the source)."""
    try:
        data = orjson.loads(definition)
    except orjson.JSONDecodeError:
        return []
    stored = data.get("nodes") if isinstance(data, dict) else None
    if not isinstance(stored, dict):
        return []
    try:
        parsed = yaml.safe_load(source)
        written = parsed.get("nodes") if isinstance(parsed, dict) else None
    except yaml.YAMLError:
        written = None
    names = [str(n) for n in (written if isinstance(written, dict) else stored) if n in stored]
    start = data.get("start")
    if isinstance(start, str) and start in names:
        names.remove(start)
        names.insert(0, start)
    return names


@dataclass(frozen=True, slots=True)
class NodeStep:
    """One node of the template: how many answered calls reached it and how many ended there,
    by who hung up."""

    node: str
    reached: int
    reached_pct: float
    ended: dict[str, int]  # "callee", "bot", "limit", "other"
    in_template: bool = True

    @property
    def ended_total(self) -> int:
        return sum(self.ended.values())


@dataclass(frozen=True, slots=True)
class TemplateFunnel:
    walked: int  # answered calls with a path through the template
    steps: list[NodeStep]


def template_funnel(nodes: Sequence[str], walks: Mapping[tuple[str, str], int]) -> TemplateFunnel:
    """Per node, in template order: calls that reached it (a node visited twice in one call
    counts once) and calls whose last node it was. Nodes a path names that the template does
    not (a stored path of another version) come last, in the order first seen."""
    order = list(dict.fromkeys(nodes))
    reached: dict[str, int] = dict.fromkeys(order, 0)
    ended: dict[str, dict[str, int]] = {}
    walked = 0
    for (path_text, side), n in walks.items():
        path = _path(path_text)
        if not path:
            continue
        walked += n
        for node in dict.fromkeys(path):
            reached[node] = reached.get(node, 0) + n
        by = side if side in END_SIDES else "other"
        last = ended.setdefault(path[-1], {})
        last[by] = last.get(by, 0) + n
    known = set(order)
    steps = [
        NodeStep(
            node=name,
            reached=count,
            reached_pct=round(100 * count / walked, 1) if walked else 0.0,
            ended={k: ended.get(name, {}).get(k, 0) for k in (*END_SIDES, "other")},
            in_template=name in known,
        )
        for name, count in reached.items()
    ]
    return TemplateFunnel(walked, steps)


def _path(text: str) -> list[str]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


@dataclass(frozen=True, slots=True)
class RatePoint:
    at: int  # bucket start, epoch ms
    attempts: int
    answered: int

    @property
    def rate(self) -> float | None:
        return round(100 * self.answered / self.attempts, 1) if self.attempts else None


@dataclass(frozen=True, slots=True)
class AnswerRate:
    bucket_minutes: int
    points: list[RatePoint]


def bucket_for(span_ms: int) -> int:
    """The narrowest bucket width (minutes) that draws ``span_ms`` in MAX_BUCKETS points."""
    for minutes in BUCKET_MINUTES:
        if span_ms // (minutes * 60000) + 1 <= MAX_BUCKETS:
            return minutes
    return BUCKET_MINUTES[-1]


def answer_rate(minutes: Mapping[int, Sequence[int]]) -> AnswerRate:
    """Attempts and answered calls per bucket over the campaign's span, every bucket from the
    first call's to the last call's present (empty ones with no rate, a gap in the line)."""
    if not minutes:
        return AnswerRate(BUCKET_MINUTES[0], [])
    first, last = min(minutes), max(minutes)
    width = bucket_for(last - first)
    size = width * 60000
    sums: dict[int, list[int]] = {}
    for m, (attempts, answered) in minutes.items():
        slot = sums.setdefault(m // size * size, [0, 0])
        slot[0] += attempts
        slot[1] += answered
    start, end = first // size * size, last // size * size
    empty = [0, 0]
    points = [
        RatePoint(b, sums.get(b, empty)[0], sums.get(b, empty)[1])
        for b in range(start, end + 1, size)
    ]
    return AnswerRate(width, points)
