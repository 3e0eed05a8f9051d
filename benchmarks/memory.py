"""Memory under load: rounds of 1,000 concurrent async creates over one aiohttp session.

Run in a fresh process against the benchmark server: peak RSS after each
round and the number of live objects after a full collection must stay flat.
"""

import asyncio
import gc
import json
import resource
import sys

from benchmarks.payloads import API_KEY, PARAMS
from lattice_stripe import AsyncClient
from lattice_stripe.adapters.aiohttp import AiohttpTransport


async def _rounds(base: str, rounds: int, concurrent: int) -> list[dict[str, int]]:
    samples = []
    async with AsyncClient(API_KEY, base_url=base, transport=AiohttpTransport(limit=100)) as client:
        for number in range(rounds):
            sessions = await asyncio.gather(
                *(client.billing_portal.sessions.create(PARAMS) for _ in range(concurrent))
            )
            assert len(sessions) == concurrent
            del sessions
            gc.collect()
            samples.append(
                {
                    "round": number + 1,
                    "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                    "live_objects": len(gc.get_objects()),
                }
            )
    return samples


def main() -> None:
    """``python -m benchmarks.memory BASE_URL ROUNDS CONCURRENT`` prints JSON samples."""
    base, rounds, concurrent = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    print(json.dumps(asyncio.run(_rounds(base, rounds, concurrent))))


if __name__ == "__main__":
    main()
