"""Open-loop load generator for the model server: a fixed request rate, whatever the answers.

Request ``i`` is due at ``start + i / rate`` and is sent then, even if earlier ones are
still waiting, so a slow server shows as latency instead of as a lower rate (no
coordinated omission). Latency runs from the due time to the end of the answer.
Bodies are taken in turn from a JSON list. Writes a JSON report; prints its summary.

    python tests/reliability/load_generator.py --url http://127.0.0.1:8000 \\
        --bodies bodies.json --rate 100 --seconds 60 --out load.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

BUCKETS_MS = (1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 150, 250, 500, 1000, 2500)
"""Upper bounds of the latency histogram's buckets; one more counts the rest."""
TIMEOUT_SECONDS = 10
ERRORS_KEPT = 5


async def run(url: str, bodies: list[Any], rate: float, seconds: float) -> dict[str, Any]:
    if urlparse(url).hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"refusing to load {url}: only loopback addresses are targets")
    total = round(rate * seconds)
    latencies: list[float] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT_SECONDS, limits=limits) as client:

        async def send(due: float, body: Any) -> None:
            try:
                response = await client.post("/predict", json=body)
                if response.status_code != 200:
                    errors.append(f"{response.status_code}: {response.text[:200]}")
                    return
            except httpx.HTTPError as error:
                errors.append(f"{type(error).__name__}: {error}")
                return
            latencies.append((time.perf_counter() - due) * 1000)

        start = time.perf_counter()
        tasks = []
        for index in range(total):
            due = start + index / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.create_task(send(due, bodies[index % len(bodies)])))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    return report(total, elapsed, rate, seconds, latencies, errors)


def report(
    total: int,
    elapsed: float,
    rate: float,
    seconds: float,
    latencies: list[float],
    errors: list[str],
) -> dict[str, Any]:
    ordered = sorted(latencies)
    counts = [0] * (len(BUCKETS_MS) + 1)
    for value in ordered:
        counts[next((i for i, edge in enumerate(BUCKETS_MS) if value <= edge), -1)] += 1
    return {
        "target_rate": rate,
        "seconds": seconds,
        "requests": total,
        "ok": len(latencies),
        "errors": len(errors),
        "error_examples": errors[:ERRORS_KEPT],
        "achieved_rate": round(total / elapsed, 2),
        "latency_ms": {
            "p50": _quantile(ordered, 0.50),
            "p90": _quantile(ordered, 0.90),
            "p99": _quantile(ordered, 0.99),
            "max": round(ordered[-1], 2) if ordered else None,
            "mean": round(sum(ordered) / len(ordered), 2) if ordered else None,
        },
        "histogram_ms": [
            {"le": edge, "count": count}
            for edge, count in zip([*BUCKETS_MS, "inf"], counts, strict=True)
        ],
    }


def _quantile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)], 2)


def summary(result: dict[str, Any]) -> str:
    latency = result["latency_ms"]
    lines = [
        f"{result['requests']} requests at {result['target_rate']:g}/s for "
        f"{result['seconds']:g} s (achieved {result['achieved_rate']:g}/s): "
        f"{result['ok']} ok, {result['errors']} errors",
        "latency ms: " + ", ".join(f"{name} {value}" for name, value in latency.items()),
        "histogram (ms, upper bound: count):",
    ]
    lines += [f"  <= {row['le']}: {row['count']}" for row in result["histogram_ms"] if row["count"]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="model server base URL (loopback only)")
    parser.add_argument("--bodies", type=Path, required=True, help="JSON list of request bodies")
    parser.add_argument("--rate", type=float, default=100, help="requests per second")
    parser.add_argument("--seconds", type=float, default=60, help="duration")
    parser.add_argument("--out", type=Path, required=True, help="where the JSON report goes")
    args = parser.parse_args()
    bodies = json.loads(args.bodies.read_text())
    result = asyncio.run(run(args.url, bodies, args.rate, args.seconds))
    args.out.write_text(json.dumps(result, indent=2))
    print(summary(result))


if __name__ == "__main__":
    main()
