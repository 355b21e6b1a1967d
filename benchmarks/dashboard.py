"""Dashboard speed on a year of data: every page's queries and its full render, on PostgreSQL with 1M messages.

Usage: .venv/bin/python benchmarks/dashboard.py [--pg-url URL] [--messages 1000000] [--runs 10] [--reuse]

Fills a PostgreSQL database (default ``finsent_bench`` on the local server, created if missing) with
``benchmarks/desk_store.py``'s year, then renders each page with Streamlit's AppTest, the dashboard's
caches emptied before every run, and reports per page and time range the p50 and p95 of the full render
and of the time spent in the database during it: "cold" with every cache empty (the first view of a range),
"refresh" with only the long-lived cache of closed heatmap columns kept (what each 10 s refresh costs).
Prints the machine's load average before and after: timings on a busy machine are inflated. AppTest's scan
of the installed packages for components, which a dashboard server makes once at its start, is made once per
process (``--scan-every-render``: at every render, as the figures before 2026-12-05's rollups were taken). Writes the
figures to ``benchmarks/results/dashboard-<date>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]
os.environ.setdefault("STREAMLIT_LOGGER_LEVEL", "error")  # AppTest outside a server warns on every run

import desk_store  # noqa: E402
import streamlit as st  # noqa: E402
from sqlalchemy import Engine, create_engine, event, make_url, text  # noqa: E402
from streamlit.runtime.caching.cache_utils import CachedFunc  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from pipeline.engine import create_store_engine  # noqa: E402
from pipeline.tooling.bench import cpu_model  # noqa: E402
from pipeline.tooling.dashboard_server import APP  # noqa: E402

PAGES: dict[str, dict[str, str]] = {
    "Overview": {"view": "Overview", "who": "desk"},  # with a five-ticker watchlist
    "Alerts": {"view": "Alerts"},
    "Incidents": {"view": "Incidents"},
    "Ticker": {"view": "Ticker", "ticker": "NVDA"},  # the most talked-about company
    "Ticker (quiet)": {"view": "Ticker", "ticker": "SHOP"},  # the least
    "Explore": {"view": "Explore"},
    "Explore: search word": {"view": "Explore", "q": "guidance"},
    "Explore: search phrase": {"view": "Explore", "q": '"accounting irregularities"'},
    "Explore: search prefix": {"view": "Explore", "q": "layoff*"},
    "Feedback": {"view": "Feedback"},
    "Model": {"view": "Model"},
}
RANGES = ("1h", "24h", "7d", "all")


class DatabaseClock:
    """Seconds spent between a statement's start and end, on every engine of the process."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.statements = 0
        event.listen(Engine, "before_cursor_execute", self.before)
        event.listen(Engine, "after_cursor_execute", self.after)

    def before(self, conn: Any, *_: Any) -> None:
        conn.info["bench_t0"] = time.perf_counter()

    def after(self, conn: Any, *_: Any) -> None:
        self.seconds += time.perf_counter() - conn.info.pop("bench_t0", time.perf_counter())
        self.statements += 1


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def clear_caches(keep_history: bool) -> None:
    """Empty the dashboard's caches; ``keep_history``: all but the long-lived one of closed heatmap columns, as
    a 10 s refresh finds them."""
    if not keep_history:
        st.cache_data.clear()
        return
    import dashboard.grid

    for name, module in list(sys.modules.items()):
        if name.startswith("dashboard"):
            for value in vars(module).values():
                if isinstance(value, CachedFunc) and value is not dashboard.grid._history:
                    value.clear()


# AppTest scans every installed package for Streamlit components at the start of each of its instances (seconds
# on a busy machine); a dashboard server does it once, at its start. --scan-every-render keeps the former.
COMPONENTS: list[Any] = []
SCAN_ONCE = True


def render(
    params: dict[str, str], range_name: str, clock: DatabaseClock, keep_history: bool = False
) -> tuple[float, float, int, bool]:
    """One render with empty caches: (seconds, seconds in the database, statements, whether it raised)."""
    clear_caches(keep_history)
    at = AppTest.from_file(str(APP), default_timeout=120)
    if SCAN_ONCE and COMPONENTS:  # the installed packages were scanned for components once, as a server does
        at._bidi_component_manager = COMPONENTS[0]
    for key, value in {**params, "range": range_name}.items():
        at.query_params[key] = value
    db0, n0 = clock.seconds, clock.statements
    start = time.perf_counter()
    at.run()
    if not COMPONENTS and getattr(at, "_bidi_component_manager", None) is not None:
        COMPONENTS.append(at._bidi_component_manager)
    return time.perf_counter() - start, clock.seconds - db0, clock.statements - n0, bool(at.exception)


def ensure_database(url: str) -> None:
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": target.database}).first():
            conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/finsent_bench")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=10, help="cold renders per page and range")
    parser.add_argument("--ranges", default=",".join(RANGES))
    parser.add_argument("--pages", default=",".join(PAGES))
    parser.add_argument("--reuse", action="store_true", help="keep a database filled by an earlier run")
    parser.add_argument("--fill-only", action="store_true", help="fill the database and stop")
    parser.add_argument(
        "--scan-every-render",
        action="store_true",
        help="let each render scan the installed packages for components, as AppTest does (the earlier figures)",
    )
    args = parser.parse_args()
    global SCAN_ONCE
    SCAN_ONCE = not args.scan_every_render
    warnings.filterwarnings("ignore")
    ensure_database(args.pg_url)
    engine = create_store_engine(args.pg_url)
    have = desk_store.counts(engine) if args.reuse else {}
    if have.get("messages") != args.messages:
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        start = time.perf_counter()
        have = desk_store.fill(engine, args.messages)
        print(f"filled in {time.perf_counter() - start:.0f}s")
    print("rows: " + ", ".join(f"{k} {v:,}" for k, v in have.items()))
    for table, names in desk_store.indexes(engine).items():
        print(f"indexes on {table}: {', '.join(names)}")
    engine.dispose()
    if args.fill_only:
        return
    os.environ["FINSENT_STORE_URL"] = args.pg_url
    clock = DatabaseClock()
    load_before = os.getloadavg()
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores; load average {load_before[0]:.2f} {load_before[1]:.2f}")
    results: list[dict[str, Any]] = []
    head = ("page", "range", "cold p50", "p95", "db p95", "refresh p50", "p95", "stmts")
    print("{:<24} {:>5} {:>9} {:>6} {:>7} {:>12} {:>6} {:>6}".format(*head))
    for name in args.pages.split(","):
        for range_name in args.ranges.split(","):
            render(PAGES[name], range_name, clock)  # warm-up: imports, the engine's pool
            cold = [render(PAGES[name], range_name, clock) for _ in range(args.runs)]
            warm = [render(PAGES[name], range_name, clock, keep_history=True) for _ in range(args.runs)]
            row = {
                "page": name,
                "range": range_name,
                "cold_p50_s": statistics.median(r[0] for r in cold),
                "cold_p95_s": percentile([r[0] for r in cold], 0.95),
                "cold_db_p50_s": statistics.median(r[1] for r in cold),
                "cold_db_p95_s": percentile([r[1] for r in cold], 0.95),
                "refresh_p50_s": statistics.median(r[0] for r in warm),
                "refresh_p95_s": percentile([r[0] for r in warm], 0.95),
                "refresh_db_p95_s": percentile([r[1] for r in warm], 0.95),
                "statements": cold[-1][2],
                "errors": sum(r[3] for r in cold + warm),
            }
            results.append(row)
            print(
                f"{name:<24} {range_name:>5} {row['cold_p50_s']:>8.2f}s {row['cold_p95_s']:>5.2f}s "
                f"{row['cold_db_p95_s']:>6.2f}s {row['refresh_p50_s']:>11.2f}s {row['refresh_p95_s']:>5.2f}s "
                f"{row['statements']:>6}" + (f"  ERRORS {row['errors']}" if row["errors"] else ""),
                flush=True,
            )
    load_after = os.getloadavg()
    print(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    out = HERE / "results" / f"dashboard-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(exist_ok=True)
    report = {
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version()},
        "load_average_before": load_before,
        "load_average_after": load_after,
        "rows": have,
        "runs": args.runs,
        "component_scan": "once per process, as a server does" if SCAN_ONCE else "at every render (AppTest's own)",
        "results": results,
    }
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
