"""Reading a large table of irregular observations: load time and peak memory, against pandas reading it whole.

Generates the made-up sensor log (``make_sensor_log.py``) at the size asked for (``--pumps 46000``: about
10 million rows), as CSV and as Parquet, then measures, each in a fresh process (one thread):

- ``tsmoe``: ``load_irregular_table`` into the steps a model reads (an empty cache: the real work);
- ``tsmoe cached``: the same call again, from the cache of prepared arrays;
- ``pandas``: ``pd.read_csv`` of the whole file with its default types (what a user would try first),
  which gives rows, not steps: it does less work than ``tsmoe``.

Peak memory is the process's peak resident set above what it held after its imports. The numeric payload
is what the rows hold as numbers (ID code, time, variable code, value: 8 + 8 + 4 + 8 bytes a row) and the
prepared arrays' size (steps x variables float32, times, offsets).

    python benchmarks/irregular_scale.py --pumps 46000 --work /tmp/scale --out benchmarks/results/irregular-scale.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tsmoe.experiments.results import machine

HERE = Path(__file__).resolve().parent

CHILD = r"""
import json, os, resource, sys, time
os.environ["OMP_NUM_THREADS"] = "1"
kind, path, cache = sys.argv[1], sys.argv[2], sys.argv[3]
os.environ["TSMOE_CACHE"] = cache
import pandas as pd
from tsmoe.data.sources.irregular_table import IrregularTableParams, load_irregular_table

def rss_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

base = rss_kib()
started = time.perf_counter()
if kind == "pandas":
    frame = pd.read_csv(path)
    result = {"rows": len(frame)}
else:
    params = IrregularTableParams(observations=path, labels=str(os.path.join(os.path.dirname(path), "labels.csv")),
                                  id_col="pump", variable_col="sensor", value_col="reading", label_col="failed",
                                  duplicates="mean")
    data = load_irregular_table(params)
    result = {"entities": len(data), "steps": int(data.offsets[-1]),
              "prepared_bytes": int(data.values.nbytes + data.times.nbytes + data.offsets.nbytes)}
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_mib": (peak - base) / 1024, **result}))
"""


def measure(kind: str, path: Path, cache: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, kind, str(path), str(cache)], check=True, capture_output=True,
                         text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def markdown_table(result: dict) -> str:
    """Load time and peak memory of each way of reading the table."""
    runs = result["results"]
    lines = [
        f"{result['rows']:,} rows ({runs['csv size (MiB)']:.0f} MiB as CSV, {runs['parquet size (MiB)']:.0f} MiB as "
        f"Parquet); numeric payload {result['numeric_payload_mib']:.0f} MiB; one thread of an "
        f"{result['machine']['cpu']}",
        "",
        "| reader | gives | seconds | peak memory above imports (MiB) |",
        "|---|---|---|---|",
    ]
    gives = {"pandas read_csv": "rows"}
    for name in ("tsmoe csv", "tsmoe csv, cached", "tsmoe parquet", "tsmoe parquet, cached", "pandas read_csv"):
        run = runs[name]
        what = gives.get(name, f"{run.get('steps', 0):,} steps of {run.get('entities', 0):,} entities")
        ratio = run["peak_mib"] / result["numeric_payload_mib"]
        lines.append(f"| {name} | {what} | {run['seconds']:.1f} | {run['peak_mib']:.0f} ({ratio:.2f}x the payload) |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pumps", type=int, default=46000)
    parser.add_argument("--work", default=None, help="a folder for the generated tables (default: a temporary one)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="tsmoe-scale-"))
    rows = {}
    for fmt in ("csv", "parquet"):
        folder = work / fmt
        if not (folder / "labels.csv").exists() and not (folder / "labels.parquet").exists():
            subprocess.run([sys.executable, str(HERE / "make_sensor_log.py"), "--pumps", str(args.pumps), "--format",
                            fmt, "--out", str(folder)], check=True)  # fmt: skip
        if fmt == "parquet" and not (folder / "labels.csv").exists():  # the labels are read from a CSV beside it
            import pyarrow.csv as pa_csv
            import pyarrow.parquet as pq

            pa_csv.write_csv(pq.read_table(folder / "labels.parquet"), folder / "labels.csv")
        observations = folder / f"observations.{fmt}"
        cache = Path(tempfile.mkdtemp(prefix="tsmoe-cache-"))
        first = measure("tsmoe", observations, cache)
        rows[f"tsmoe {fmt}"] = first
        rows[f"tsmoe {fmt}, cached"] = measure("tsmoe", observations, cache)
        rows[f"{fmt} size (MiB)"] = observations.stat().st_size / 2**20
    rows["pandas read_csv"] = measure("pandas", work / "csv" / "observations.csv", Path(tempfile.mkdtemp()))
    n_rows = rows["pandas read_csv"]["rows"]
    result = {
        "protocol": "irregular-scale",
        "command": "python benchmarks/irregular_scale.py --pumps " + str(args.pumps),
        "machine": {**machine(), "threads": 1},
        "rows": n_rows,
        "numeric_payload_mib": n_rows * 28 / 2**20,
        "results": rows,
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
