"""Time the full analysis report on a large simulated export, and the statsmodels fits inside it.

    .venv/bin/python benchmarks/analysis_report.py [--n 100000] [--keep DIR]

Both figures come from the same run: the fits are timed by the package's own instrumentation
(analysis.estimation.record_fits wraps every statsmodels call), not estimated separately.
"""

from __future__ import annotations

import os

# Same default as `python -m analysis`: one BLAS thread (small matrices, busy machines).
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.estimation import record_fits  # noqa: E402
from analysis.report import ReportOptions, write_report  # noqa: E402
from analysis.simulate import simulate_export  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000, help="simulated respondents")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", help="write the report here instead of a temporary folder")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        export = Path(scratch) / "export.parquet"
        start = time.perf_counter()
        simulate_export(args.n, seed=args.seed).to_parquet(export, index=False)
        simulate_seconds = time.perf_counter() - start
        out = Path(args.keep) if args.keep else Path(scratch) / "report"
        start = time.perf_counter()
        with record_fits() as fits:
            write_report(export, out, ReportOptions())
        report_seconds = time.perf_counter() - start
        figures = len(list((out / "figures").glob("*.png")))
        tables = len(list((out / "tables").glob("*.csv")))

    print(f"respondents:               {args.n}")
    print(f"simulate + write export:   {simulate_seconds:8.2f} s (not part of the report)")
    print(f"full report (wall):        {report_seconds:8.2f} s  "
          f"({tables} tables, {figures} figures)")
    print(f"statsmodels fits inside:   {fits.seconds:8.2f} s  ({fits.count} fits: "
          + ", ".join(f"{k} {v:.2f} s" for k, v in sorted(fits.by_kind.items())) + ")")
    print(f"share of report in fits:   {100 * fits.seconds / report_seconds:8.1f} %")


if __name__ == "__main__":
    main()
