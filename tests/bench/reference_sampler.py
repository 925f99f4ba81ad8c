#!/usr/bin/env python3
"""A straightforward reference implementation of the project's sampler.

Rivest's consistent sampler as docs/ and DESIGN describe it:
    seed_hash = hex(SHA-256(seed))
    ticket(id) = "0." + reverse(decimal(int(hex(SHA-256(seed_hash + id)), 16)) zero-padded to 64)
Run by the benchmark (`cargo run --release -p bench`) as a subprocess; it
prints one JSON object: the test vectors, and the tickets per second over a
population of `--classes` classes of `--roster` trainees (sample ids
`KM-2022-000001:001` ...), with a SHA-256 digest of the tickets, one per line,
so the Rust side can check both computed the same tickets.
"""

import argparse
import hashlib
import json
import time


def seed_hash(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def ticket(sh: str, sample_id: str) -> str:
    n = int(hashlib.sha256((sh + sample_id).encode()).hexdigest(), 16)
    return "0." + str(n).zfill(64)[::-1]


def order(seed: str, ids):
    sh = seed_hash(seed)
    tickets = [(ticket(sh, i), i) for i in sorted(set(ids))]
    # Decimal fractions compare as their digit strings once trailing zeros go.
    tickets.sort(key=lambda t: (t[0][2:].rstrip("0"), t[1]))
    return tickets


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seed", default="01382438112797316654")
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--roster", type=int, default=40)
    a = p.parse_args()

    vectors = {
        "AB-130": ticket(seed_hash("01382438112797316654"), "AB-130"),
        "order_314159": [i for _, i in order("314159", ["ab-1", "ab-2", "cd-1", "ef-3"])],
    }

    ids = [
        f"KM-2022-{c:06}:{line:03}"
        for c in range(1, a.classes + 1)
        for line in range(1, a.roster + 1)
    ]
    started = time.perf_counter()
    sh = seed_hash(a.seed)
    tickets = [ticket(sh, i) for i in ids]
    seconds = time.perf_counter() - started
    digest = hashlib.sha256("".join(t + "\n" for t in tickets).encode()).hexdigest()
    print(
        json.dumps(
            {
                "tickets": len(tickets),
                "seconds": seconds,
                "digest": digest,
                "vectors": vectors,
            }
        )
    )


if __name__ == "__main__":
    main()
