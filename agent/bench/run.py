"""Speed benchmark of the migrate step (not a test): prints wall time and peak memory.

1. Northwind end to end (extract + migrate on DuckDB, no LLM); target under 20 s.
2. A generated catalogue of 1,000 tables and 200 views; target under 60 s and 500 MB peak RSS.

Run: ``$VENV/bin/python agent/bench/run.py [--only northwind|catalogue] [--tables N --views M]``.
Each step runs as its own process, as in a Job pod, so start-up is counted.
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
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest child so far (KiB on Linux).
    return seconds, max(peak, before) / 1024


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
    sys.stdout.write(f"{line} [load average {load} on {os.cpu_count()} CPUs]\n")
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
