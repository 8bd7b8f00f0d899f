#!/usr/bin/env python
"""Cost of authentication: requests/s of `GET /threads/{id}` with auth off, with a Supabase HS256 token and with
ES256/RS256 tokens verified against a JWKS served on loopback. Bounded: a fixed number of requests per mode.

    .venv/bin/python scripts/bench_auth.py [--requests 4000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.server import ServerProcess  # noqa: E402
from tests.test_auth_support import SECRET, JwksServer, KeyPair, bearer, hs256, signed  # noqa: E402


async def measure(url: str, headers: dict[str, str], requests: int, concurrency: int) -> float:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as client:
        thread_id = (await client.post("/threads", json={})).json()["thread_id"]
        path = f"/threads/{thread_id}"
        for _ in range(200):  # warm up
            assert (await client.get(path)).status_code == 200
        remaining = requests

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                response = await client.get(path)
                assert response.status_code == 200, response.text

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return requests / (time.perf_counter() - started)


def gate_cost_us(env: dict[str, str], token: str, n: int = 2000) -> float:
    """In-process time of the auth gate alone (verification, identity set-up) per request, in microseconds."""
    import os

    from robyn.robyn import Headers

    from robyn_server.auth.middleware import build_gate
    from robyn_server.config import load_config
    from tests.server import TEST_CONFIG

    saved = dict(os.environ)
    os.environ.update(env)
    try:
        gate = build_gate(load_config(TEST_CONFIG))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert gate is not None

    class Url:
        path = "/threads/00000000-0000-4000-8000-000000000000"

    class Request:
        method = "GET"
        url = Url()
        headers = Headers({"authorization": f"Bearer {token}"})
        identity = None

    async def loop() -> float:
        request = Request()
        for _ in range(100):
            assert await gate(request) is None
        started = time.perf_counter()
        for _ in range(n):
            await gate(request)
        return (time.perf_counter() - started) / n * 1e6

    return asyncio.run(loop())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    es, rs = KeyPair("ES256"), KeyPair("RS256")
    with JwksServer([es, rs]) as jwks:
        jwks_env = {"SUPABASE_URL": jwks.url}
        modes = {
            "auth off": ({}, {}),
            "Supabase HS256": ({"SUPABASE_JWT_SECRET": SECRET}, bearer(hs256("bench"))),
            "Supabase ES256 (JWKS)": (jwks_env, bearer(signed(es, "bench", jwks.issuer))),
            "Supabase RS256 (JWKS)": (jwks_env, bearer(signed(rs, "bench", jwks.issuer))),
        }
        servers = {}
        try:
            for name, (env, _) in modes.items():
                proc = ServerProcess(env={"ROBYN_SERVER_STORAGE": "memory", **env})
                proc.env = {k: v for k, v in proc.env.items() if not k.startswith("SUPABASE_") or k in env}
                servers[name] = proc.start()
            rates: dict[str, list[float]] = {name: [] for name in modes}
            for _ in range(args.rounds):  # interleaved, so load from elsewhere hits every mode alike
                for name, (_, headers) in modes.items():
                    rates[name].append(
                        asyncio.run(measure(servers[name].url, headers, args.requests, args.concurrency))
                    )
        finally:
            for proc in servers.values():
                proc.stop()
        costs = {name: gate_cost_us(env, headers["Authorization"][7:]) for name, (env, headers) in modes.items() if env}
    off = statistics.median(rates["auth off"])
    print(f"GET /threads/{{id}}, {args.requests} requests x {args.rounds} rounds, concurrency {args.concurrency}")
    for name, values in rates.items():
        median = statistics.median(values)
        rounds = ", ".join(f"{v:.0f}" for v in values)
        line = f"{name:<24} median {median:7.0f} req/s ({median / off:6.1%})  rounds: {rounds}"
        if name in costs:
            line += f"  gate alone: {costs[name]:.0f} us/request"
        print(line, flush=True)


if __name__ == "__main__":
    main()
