"""Prometheus metrics of one dialer, read from the counters it keeps anyway (``DialerStats``,
the lease keeper's ``LeaseStats``, the speech engines' metrics) when Prometheus scrapes: the
dialing path calls nothing here except ``Latency.observe`` for the claim time."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from outdial.dialer.worker import Dialer

CLAIM_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(slots=True)
class Latency:
    """A histogram as plain numbers (no lock: one writer, the dialer's loop; a scrape that
    reads mid-update is off by one observation at most)."""

    buckets: tuple[float, ...] = CLAIM_BUCKETS
    counts: list[int] = field(default_factory=lambda: [0] * (len(CLAIM_BUCKETS) + 1))
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, seconds)] += 1
        self.total += seconds

    def cumulative(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*self.buckets, float("inf")), self.counts, strict=True):
            running += count
            out.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return out


class DialerCollector(Collector):
    """One worker's calls, outcomes, lines, leases, database errors and speech timings,
    labelled with its worker id (and the carrier's name where it matters)."""

    def __init__(self, dialer: Dialer, carrier: str) -> None:
        self.dialer = dialer
        self.carrier = carrier

    def collect(self) -> Iterator[Metric]:
        d = self.dialer
        w = d.config.worker_id
        stats, leases = d.stats, d.keeper.stats
        yield _gauge("outdial_calls_in_flight", "calls this worker is placing now", w, d.in_flight)
        lines = GaugeMetricFamily(
            "outdial_lines_in_use",
            "an account's lines held by this worker",
            labels=["worker", "account"],
        )
        for account, held in sorted(d.lines_in_use().items()):
            lines.add_metric([w, str(account)], held)
        yield lines
        wc = ["worker", "carrier"]
        placed = CounterMetricFamily(
            "outdial_calls_placed", "calls handed to the carrier (rate(): the dial rate)", labels=wc
        )
        placed.add_metric([w, self.carrier], stats.placed)
        yield placed
        outcomes = CounterMetricFamily(
            "outdial_call_outcomes", "finished attempts by outcome", labels=[*wc, "outcome"]
        )
        for outcome, n in sorted(dict(stats.by_outcome).items()):
            outcomes.add_metric([w, self.carrier, outcome], n)
        yield outcomes
        retries = CounterMetricFamily(
            "outdial_carrier_unavailable",
            "attempts the carrier could not take (callee retried later)",
            labels=wc,
        )
        retries.add_metric([w, self.carrier], stats.carrier_retries)
        yield retries
        counters = (
            ("outdial_stale_claims", "claims given back undialed (stall)", stats.stale_claims),
            ("outdial_calls_cut_at_stop", "calls ended interrupted at a stop", stats.cut_at_stop),
            ("outdial_fenced_writes", "results discarded: lease taken over", leases.fenced),
            ("outdial_recovered_calls", "calls of stopped workers recorded interrupted",
             leases.recovered + leases.taken_over_at_start),
            ("outdial_lost_in_flight", "calls taken over while in flight", leases.lost_in_flight),
            ("outdial_db_errors", "database errors the dialer backed off from", stats.db_errors),
        )  # fmt: skip
        for name, doc, value in counters:
            yield _counter(name, doc, w, value)
        claim = HistogramMetricFamily(
            "outdial_claim_seconds", "time of one claim transaction", labels=["worker"]
        )
        claim.add_metric([w], d.stats.claim_latency.cumulative(), d.stats.claim_latency.total)
        yield claim
        yield from _speech(d.carrier, w)


def _gauge(name: str, doc: str, worker: str, value: float) -> GaugeMetricFamily:
    g = GaugeMetricFamily(name, doc, labels=["worker"])
    g.add_metric([worker], value)
    return g


def _counter(name: str, doc: str, worker: str, value: float) -> CounterMetricFamily:
    c = CounterMetricFamily(name, doc, labels=["worker"])
    c.add_metric([worker], value)
    return c


def _speech(carrier: Any, worker: str) -> Iterator[Metric]:
    """The TTS and ASR engines' own timings (count and sum) where the carrier has engines
    (the SIP carrier); the simulated carrier has none."""
    tts = getattr(getattr(carrier, "tts", None), "metrics", None)
    if tts is not None:
        s = SummaryMetricFamily(
            "outdial_tts_render_seconds", "TTS renders (cache misses)", labels=["worker"]
        )
        s.add_metric([worker], tts.renders, tts.render_seconds)
        yield s
        yield _counter(
            "outdial_tts_cache_hits", "prompts served from the TTS cache", worker, tts.cache_hits
        )
    asr = getattr(getattr(carrier, "asr", None), "metrics", None)
    if asr is not None:
        s = SummaryMetricFamily(
            "outdial_asr_decode_seconds",
            "ASR decoding at the end of each utterance",
            labels=["worker"],
        )
        s.add_metric([worker], asr.utterances, asr.decode_seconds)
        yield s


def serve_metrics(
    host: str, port: int, registry: CollectorRegistry
) -> tuple[Any, threading.Thread]:
    """Serve ``registry`` at ``http://host:port/metrics`` from a daemon thread (0: any free
    port; the bound one is ``server.server_port``)."""
    server, thread = start_http_server(port, addr=host, registry=registry)
    return server, thread
