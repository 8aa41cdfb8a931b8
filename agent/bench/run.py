"""Speed benchmark of the migrate step (not a test): prints wall time and peak memory.

1. Northwind end to end (extract + migrate on DuckDB, no LLM); target under 20 s.
2. A generated catalogue of 1,000 tables and 200 views; target under 60 s and 500 MB peak RSS.

Run: ``$VENV/bin/python agent/bench/run.py [--only northwind|catalogue] [--tables N --views M]``.
Each step runs as its own process, as in a Job pod, so start-up is counted; the dbt parse and
build seconds come from the step's own log.

What bounds the catalogue (py-spy profiles, 2026-12-03, this 2-core machine, load 3 to 5): dbt.
1,000 tables + 200 views are 1,200 models and some 3,800 tests, 5,000 dbt nodes. Parse took
21-22 s (about 4 ms a node) and build 150-197 s (30-40 ms a node, more under more load); the
agent's own work (generate, loading the raw tables, evaluation) 24 s. The build is dbt's Python
per node under one GIL: dbt threads 1, 2 and 4 give the same time (33, 30, 34 s for 1,000
nodes). Of its time, compiling each node (its Jinja context and SQL) is about a quarter, DuckDB
running the SQL about 15 %, dbt's event objects 12 %, connection begin/rollback 7 %, writing the
compiled SQL 5 %. 60 s would need about 12 ms a node in all: fewer nodes (one test per model for
all its column checks would still leave some 2,400), not tuning. Peak RSS (664 MB) is mostly
dbt's manifest and run state: dbt alone on a 2,500-node project peaked at 379 MB in-process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = [REPO / "examples" / "data", Path("/work/shared/data/sqlserver-samples")]


#: What the step spent in dbt, from its "Built project" log line.
_PHASES: list[str] = []


def _step(*args: str) -> tuple[float, float]:
    """Run one agent step; returns (seconds, peak RSS in MB of that process)."""
    env = {k: v for k, v in os.environ.items() if k != "DATAMIGRATE_PROGRESS_CONFIGMAP"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "datamigrate_agent", *args], env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    seconds = time.monotonic() - started
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
        raise SystemExit(f"step {args[0]} failed with {done.returncode}")
    _PHASES[:] = [
        _dbt_seconds(line) for line in done.stdout.splitlines() if "Built project" in line
    ]
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest child so far (KiB on Linux).
    return seconds, max(peak, before) / 1024


def _dbt_seconds(line: str) -> str:
    seconds = json.loads(line).get("seconds", {})
    return ", ".join(f"dbt {k} {v:.1f} s" for k, v in seconds.items())


def _counts(ws: Path) -> str:
    results = json.loads((ws / "results.json").read_text())
    return ", ".join(f"{n} {s}" for s, n in sorted(results["counts"].items()))


def bench_northwind() -> None:
    script = next(d / "instnwnd.sql" for d in SCRIPTS if (d / "instnwnd.sql").is_file())
    with tempfile.TemporaryDirectory(prefix="dm-bench-nw-") as tmp:
        ws = Path(tmp)
        t_extract, _ = _step("extract", "--workspace", tmp, "--script", str(script))
        t_migrate, rss = _step("migrate", "--workspace", tmp, "--target", "duckdb",
                               "--project-name", "northwind")  # fmt: skip
        total = t_extract + t_migrate
        _out(
            f"northwind: extract {t_extract:.1f} s + migrate {t_migrate:.1f} s = {total:.1f} s "
            f"(target < 20 s), peak RSS {rss:.0f} MB; {_counts(ws)}"
        )


def bench_catalogue(tables: int, views: int) -> None:
    from catalogue import write_catalogue

    with tempfile.TemporaryDirectory(prefix="dm-bench-cat-") as tmp:
        ws = Path(tmp)
        started = time.monotonic()
        write_catalogue(ws, tables=tables, views=views)
        t_gen = time.monotonic() - started
        t_migrate, rss = _step("migrate", "--workspace", tmp, "--target", "duckdb",
                               "--project-name", "catalogue")  # fmt: skip
        _out(
            f"catalogue {tables} tables + {views} views: migrate {t_migrate:.1f} s "
            f"(target < 60 s), peak RSS {rss:.0f} MB (target < 500 MB); metadata written in "
            f"{t_gen:.1f} s; {_counts(ws)}"
        )


def _out(line: str) -> None:
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    phases = f" ({'; '.join(_PHASES)})" if _PHASES else ""
    sys.stdout.write(f"{line}{phases} [load average {load} on {os.cpu_count()} CPUs]\n")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=("northwind", "catalogue"))
    parser.add_argument("--tables", type=int, default=1000)
    parser.add_argument("--views", type=int, default=200)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    if args.only in (None, "northwind"):
        bench_northwind()
    if args.only in (None, "catalogue"):
        bench_catalogue(args.tables, args.views)


if __name__ == "__main__":
    main()
