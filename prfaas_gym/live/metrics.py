"""Engine load from a Prometheus ``/metrics`` page, under vLLM's or SGLang's metric names.

What a real engine exports (and all this reads) is its own queue and memory state:

=========================  ======================================  ===============================
quantity                   vLLM (``vllm/v1/metrics/loggers.py``)   SGLang (``srt/metrics/collector.py``)
=========================  ======================================  ===============================
requests waiting           ``vllm:num_requests_waiting``           ``sglang:num_queue_reqs``
requests running           ``vllm:num_requests_running``           ``sglang:num_running_reqs``
KV memory used (0..1)      ``vllm:kv_cache_usage_perc``            ``sglang:token_usage``
KV capacity                ``vllm:cache_config_info`` labels       ``sglang:max_total_num_tokens``
                           ``num_gpu_blocks`` x ``block_size``
=========================  ======================================  ===============================

(``vllm:gpu_cache_usage_perc``, the pre-v0.10 name, is read when the new one is absent.)
No engine exports a predicted wait, per-cluster cached tokens or link state: those are
router-side (:mod:`prfaas_gym.live.ledger`). Parsing uses ``prometheus_client``'s text
parser (the ``live`` extra); a page without the needed names is an error naming the metric.
"""

from __future__ import annotations

from dataclasses import dataclass

NAMES = {
    "vllm": {"waiting": ("vllm:num_requests_waiting",), "running": ("vllm:num_requests_running",),
             "kv_usage": ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")},
    "sglang": {"waiting": ("sglang:num_queue_reqs",), "running": ("sglang:num_running_reqs",),
               "kv_usage": ("sglang:token_usage",)},
}


@dataclass(frozen=True, slots=True)
class EngineMetrics:
    """One scrape of one engine (sums over its data-parallel ranks / label sets).

    Attributes:
        waiting: requests queued, not yet scheduled.
        running: requests in the running batch (prefilling or decoding).
        kv_usage: fraction of its KV cache in use (0..1).
        kv_capacity_tokens: KV capacity in tokens (0 when the page does not say).
        time_s: when the scrape was taken (``time.monotonic()``).
    """

    waiting: float
    running: float
    kv_usage: float
    kv_capacity_tokens: float
    time_s: float


def parse_engine_metrics(text: str, flavour: str = "vllm", time_s: float = 0.0) -> EngineMetrics:
    """Read :class:`EngineMetrics` from a Prometheus text page; ``ValueError`` when a needed
    metric is missing or malformed."""
    from prometheus_client.parser import text_string_to_metric_families

    names = NAMES[flavour]
    wanted = {n for ns in names.values() for n in ns} | {"vllm:cache_config_info", "sglang:max_total_num_tokens"}
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    capacity = 0.0
    try:
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                if s.name not in wanted:
                    continue
                if s.name == "vllm:cache_config_info":
                    try:
                        capacity += float(s.labels.get("num_gpu_blocks", 0)) * float(s.labels.get("block_size", 0))
                    except ValueError:
                        raise ValueError(f"{s.name}: num_gpu_blocks/block_size labels are not numbers") from None
                elif s.name == "sglang:max_total_num_tokens":
                    capacity += float(s.value)
                else:
                    sums[s.name] = sums.get(s.name, 0.0) + float(s.value)
                    counts[s.name] = counts.get(s.name, 0) + 1
    except ValueError as exc:
        raise ValueError(f"metrics page: {str(exc).splitlines()[0][:120]}") from None

    def get(key: str, mean: bool = False) -> float:
        for n in names[key]:
            if n in sums:
                return sums[n] / counts[n] if mean else sums[n]
        raise ValueError(f"metrics page: no {names[key][0]} ({flavour} names)")

    return EngineMetrics(get("waiting"), get("running"), min(1.0, max(0.0, get("kv_usage", mean=True))),
                         capacity, time_s)
