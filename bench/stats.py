"""Latency and throughput arithmetic (pure; unit-tested in tests/test_bench_harness.py)."""
from __future__ import annotations

import math
import statistics
from typing import Dict, Iterable, List, Optional, Sequence, Tuple


def percentile(values: Iterable[float], p: float) -> Optional[float]:
    """The ``p``-th percentile (0..100) with linear interpolation between closest ranks
    (numpy's default, "linear"); ``None`` for no values."""
    data = sorted(values)
    if not data:
        return None
    if not 0 <= p <= 100:
        raise ValueError("p must be between 0 and 100")
    if len(data) == 1:
        return float(data[0])
    rank = (len(data) - 1) * p / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return float(data[low])
    return data[low] + (data[high] - data[low]) * (rank - low)


def summarise(latencies_s: Sequence[float]) -> Dict[str, Optional[float]]:
    """count, p50/p95/p99/mean/max in milliseconds (rounded to 0.1 ms)."""
    def ms(value: Optional[float]) -> Optional[float]:
        return None if value is None else round(value * 1000, 1)

    values = list(latencies_s)
    return {
        "count": len(values),
        "p50_ms": ms(percentile(values, 50)),
        "p95_ms": ms(percentile(values, 95)),
        "p99_ms": ms(percentile(values, 99)),
        "mean_ms": ms(sum(values) / len(values)) if values else None,
        "max_ms": ms(max(values)) if values else None,
    }


def throughput(completions: Iterable[float], start: float, end: float) -> float:
    """Turns completed per second inside ``[start, end]`` (completion timestamps)."""
    if end <= start:
        return 0.0
    n = sum(1 for t in completions if start <= t <= end)
    return round(n / (end - start), 2)


def window_stats(turns: Sequence[Tuple[int, float, float]], center: int, half_width: int) -> Dict[str, object]:
    """Latency and throughput of the turns whose conversation index is within
    ``center ± half_width`` (turn = (index, started, finished), seconds).

    Throughput = those turns / the time from the first one's start to the last one's end:
    with several learners progressing together, the rate at which the system serves turns
    of conversations that long.
    """
    chosen = [t for t in turns if center - half_width <= t[0] <= center + half_width]
    out: Dict[str, object] = {"turn": center, "window": [center - half_width, center + half_width]}
    out.update(summarise([end - start for _, start, end in chosen]))
    if chosen:
        span = max(end for _, _, end in chosen) - min(start for _, start, _ in chosen)
        out["turns_per_s"] = round(len(chosen) / span, 2) if span > 0 else None
    else:
        out["turns_per_s"] = None
    return out


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    """``a / b`` rounded to 3 places; ``None`` when either is missing or ``b`` is 0."""
    if a is None or b in (None, 0):
        return None
    return round(a / b, 3)


def geometric_mean(values: Iterable[Optional[float]]) -> Optional[float]:
    """Of the values present and positive, rounded to 3 places; None when there are none."""
    present = [v for v in values if v]
    return round(statistics.geometric_mean(present), 3) if present else None


def group_by(rows: Iterable[dict], key: str) -> Dict[str, List[dict]]:
    out: Dict[str, List[dict]] = {}
    for row in rows:
        out.setdefault(str(row.get(key)), []).append(row)
    return out
