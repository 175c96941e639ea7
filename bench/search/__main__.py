"""``python -m bench.search simulator …``: the child process the search bench starts for the vendors."""

from __future__ import annotations

import sys

from bench.search.latency import serve_simulator


def _main(argv: list[str]) -> None:
    """``python -m bench.search simulator --port P --p50-ms X --p95-ms Y --seed S``."""
    import argparse

    parser = argparse.ArgumentParser(prog="bench.search")
    sub = parser.add_subparsers(dest="command", required=True)
    sim = sub.add_parser("simulator", help="serve the vendor simulator behind the latency layer")
    sim.add_argument("--port", type=int, required=True)
    sim.add_argument("--p50-ms", type=float, default=250.0)
    sim.add_argument("--p95-ms", type=float, default=1500.0)
    sim.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.command == "simulator":
        serve_simulator(port=args.port, p50_ms=args.p50_ms, p95_ms=args.p95_ms, seed=args.seed)


if __name__ == "__main__":
    _main(sys.argv[1:])
