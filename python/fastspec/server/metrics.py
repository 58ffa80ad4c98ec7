"""Prometheus text exposition (format 0.0.4), hand-written: counters, gauges and histograms of the
server, plus the scheduler's own counters read at scrape time. Thread-safe (one lock)."""
from __future__ import annotations

import threading
from typing import Dict, Iterable, List, Sequence, Tuple

TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
TPOT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
E2E_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


def _labels(d: Dict[str, str]) -> str:
    if not d:
        return ""
    esc = (lambda v: str(v).replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n"))
    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in sorted(d.items())) + "}"


def _num(v: float) -> str:
    if v == float("inf"):
        return "+Inf"
    return repr(float(v)) if isinstance(v, float) else str(v)


class Histogram:
    def __init__(self, buckets: Sequence[float]):
        self.buckets = tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, v: float) -> None:
        i = next((i for i, b in enumerate(self.buckets) if v <= b), len(self.buckets))
        self.counts[i] += 1
        self.sum += v
        self.count += 1

    def lines(self, name: str) -> Iterable[str]:
        acc = 0
        for b, c in zip(self.buckets + (float("inf"),), self.counts):
            acc += c
            yield f'{name}_bucket{{le="{_num(float(b))}"}} {acc}'
        yield f"{name}_sum {_num(self.sum)}"
        yield f"{name}_count {self.count}"


class Metrics:
    """What /metrics reports. The server calls the observe_* methods; render() adds the scheduler's."""

    def __init__(self):
        self._lock = threading.Lock()
        self.requests: Dict[Tuple[str, str], int] = {}  # (endpoint, status code) -> count
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.drafted = 0
        self.accepted = 0
        self.accepted_by_position: List[int] = []
        self.finish: Dict[str, int] = {}
        self.in_flight = 0
        self.disconnects = 0
        self.ttft = Histogram(TTFT_BUCKETS)
        self.tpot = Histogram(TPOT_BUCKETS)
        self.e2e = Histogram(E2E_BUCKETS)

    def request_done(self, endpoint: str, status: int) -> None:
        with self._lock:
            key = (endpoint, str(status))
            self.requests[key] = self.requests.get(key, 0) + 1

    def in_flight_add(self, d: int) -> None:
        with self._lock:
            self.in_flight += d

    def generation_done(self, *, prompt_tokens: int, tokens: int, drafted: int, accepted: int,
                        accepted_by_position: Sequence[int], finish_reason: str, ttft_s: float,
                        tpot_s: float, e2e_s: float, disconnected: bool) -> None:
        with self._lock:
            self.prompt_tokens += prompt_tokens
            self.generation_tokens += tokens
            self.drafted += drafted
            self.accepted += accepted
            for i, a in enumerate(accepted_by_position):
                if i >= len(self.accepted_by_position):
                    self.accepted_by_position.append(0)
                self.accepted_by_position[i] += int(a)
            self.finish[finish_reason] = self.finish.get(finish_reason, 0) + 1
            self.disconnects += int(disconnected)
            if ttft_s >= 0:
                self.ttft.observe(ttft_s)
            if tpot_s >= 0:
                self.tpot.observe(tpot_s)
            self.e2e.observe(e2e_s)

    def render(self, sched: Dict[str, int], model: str) -> str:
        out: List[str] = []

        def metric(name, kind, help_, samples):
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} {kind}")
            for labels, v in samples:
                out.append(f"{name}{_labels(labels)} {_num(v)}")

        with self._lock:
            metric("fastspec_requests_total", "counter", "HTTP requests answered, by endpoint and status code",
                   [({"endpoint": e, "status": s}, n) for (e, s), n in sorted(self.requests.items())])
            metric("fastspec_requests_in_flight", "gauge", "generation requests being served now",
                   [({}, self.in_flight)])
            metric("fastspec_client_disconnects_total", "counter",
                   "generations cancelled because the client went away", [({}, self.disconnects)])
            metric("fastspec_finished_total", "counter", "generations finished, by finish reason",
                   [({"reason": r}, n) for r, n in sorted(self.finish.items())])
            metric("fastspec_prompt_tokens_total", "counter", "prompt tokens of finished generations",
                   [({}, self.prompt_tokens)])
            metric("fastspec_generation_tokens_total", "counter", "tokens generated", [({}, self.generation_tokens)])
            metric("fastspec_spec_draft_tokens_total", "counter", "draft tokens proposed", [({}, self.drafted)])
            metric("fastspec_spec_accepted_tokens_total", "counter", "draft tokens accepted", [({}, self.accepted)])
            metric("fastspec_spec_acceptance_rate", "gauge", "accepted / drafted over all finished generations",
                   [({}, self.accepted / self.drafted if self.drafted else 0.0)])
            metric("fastspec_spec_accepted_by_position_total", "counter",
                   "draft tokens accepted at each draft position (1 = first)",
                   [({"position": str(i + 1)}, n) for i, n in enumerate(self.accepted_by_position)])
            for name, h, help_ in (
                    ("fastspec_time_to_first_token_seconds", self.ttft, "request arrival to first token"),
                    ("fastspec_time_per_output_token_seconds", self.tpot,
                     "mean time between output tokens after the first, per request"),
                    ("fastspec_request_duration_seconds", self.e2e, "request arrival to last token")):
                out.append(f"# HELP {name} {help_}")
                out.append(f"# TYPE {name} histogram")
                out.extend(h.lines(name))
        metric("fastspec_active_sequences", "gauge", "sequences decoding now (slots in use)",
               [({}, sched.get("active", 0))])
        metric("fastspec_max_sequences", "gauge", "slots (sequences decoding at once)",
               [({}, sched.get("max_sequences", 0))])
        metric("fastspec_queue_depth", "gauge", "requests waiting for a slot", [({}, sched.get("queued", 0))])
        metric("fastspec_batch_size", "gauge", "sequences in the last batched forward",
               [({}, sched.get("batch_rows", 0))])
        metric("fastspec_scheduler_rounds_total", "counter", "batched forward passes", [({}, sched.get("rounds", 0))])
        metric("fastspec_scheduler_finished_total", "counter", "requests the scheduler finished",
               [({}, sched.get("finished", 0))])
        metric("fastspec_scheduler_cancelled_total", "counter", "requests the scheduler cancelled",
               [({}, sched.get("cancelled", 0))])
        metric("fastspec_prefix_cache_lookups_total", "counter", "prefix-cache lookups at admission",
               [({}, sched.get("prefix_lookups", 0))])
        metric("fastspec_prefix_cache_hits_total", "counter", "admissions that reused a cached prefix",
               [({}, sched.get("prefix_hits", 0))])
        metric("fastspec_prefix_cache_hit_tokens_total", "counter", "prompt tokens copied from the prefix cache",
               [({}, sched.get("prefix_hit_tokens", 0))])
        metric("fastspec_prefix_cache_entries", "gauge", "prefixes held", [({}, sched.get("prefix_entries", 0))])
        metric("fastspec_prefix_cache_bytes", "gauge", "K/V bytes the prefix cache holds",
               [({}, sched.get("prefix_bytes", 0))])
        metric("fastspec_model_info", "gauge", "the model served", [({"model": model}, 1)])
        return "\n".join(out) + "\n"
