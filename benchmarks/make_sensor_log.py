"""A made-up sensor log, as a user would bring one: a table of irregular observations, labels, descriptors.

Pumps run for 24 to 96 hours each. Four sensors report at their own irregular rates (temperature about
once an hour, vibration twice, pressure every two hours, an oil-quality reading every 8 hours, each at
random moments), and two readings of one sensor now and then carry the same second. About a quarter of
the pumps fail at the end of their run. A pump that will fail wears from its start: vibration and
temperature creep up and pressure and oil quality down, slowly and under noise, then faster over its last
12 hours, so the risk grows as the signs appear; three in ten healthy pumps show the same signs for a
while mid-run, and recover. Descriptors per pump: its model (0, 1, 2) and age in years (which raises the failure risk).

    python benchmarks/make_sensor_log.py --pumps 600 --out sensors/
    python benchmarks/make_sensor_log.py --pumps 46000 --out big/ --format parquet   # about 10 M rows

writes ``observations.csv`` (``pump, time, sensor, reading``; times as timestamps), ``labels.csv``
(``pump, failed``) and ``static.csv`` (``pump, model, age_years``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

# sensor: (readings per hour, baseline, noise, rise in the hours before a failure)
SENSORS = {
    "temperature": (1.0, 60.0, 1.5, 2.0),
    "vibration": (2.0, 2.0, 0.4, 0.6),
    "pressure": (0.5, 5.0, 0.3, -0.2),
    "oil_quality": (0.125, 90.0, 3.0, -4.0),
}
WARNING_HOURS = 12.0  # how long before a failure its signs begin


def make_log(pumps: int, seed: int) -> tuple[pa.Table, pa.Table, pa.Table]:
    """``(observations, labels, static)`` for ``pumps`` pumps, as Arrow tables."""
    rng = np.random.default_rng(seed)
    hours = rng.uniform(24.0, 96.0, pumps)
    model = rng.integers(0, 3, pumps)
    age = np.round(rng.gamma(2.0, 2.5, pumps), 1)
    failed = rng.random(pumps) < 1.0 / (1.0 + np.exp(-(-1.6 + 0.12 * (age - 5.0) + 0.3 * (model == 2))))
    scare = ~failed & (rng.random(pumps) < 0.3)  # a healthy pump with a passing scare: the same signs, then gone
    scare_at = rng.uniform(0.3, 0.8, pumps) * hours
    start = np.datetime64("2026-01-01T00:00:00", "s") + rng.integers(0, 300 * 86400, pumps).astype("timedelta64[s]")
    blocks = []
    for number, (rate, base, noise, rise) in enumerate(SENSORS.values()):
        counts = rng.poisson(rate * hours)
        pump = np.repeat(np.arange(pumps), counts)
        t = rng.uniform(0.0, 1.0, len(pump)) * hours[pump]
        to_end = hours[pump] - t
        # wear of a pump that will fail: creeping up from its start (a tenth of the full sign by the middle of
        # its run, 0.4 at its end), and the rest over its last WARNING_HOURS
        wear = 0.4 * (t / hours[pump]) ** 2 + 0.6 * np.clip(1.0 - to_end / WARNING_HOURS, 0.0, 1.0) ** 2
        sign = failed[pump] * wear
        sign += scare[pump] * np.clip(1.0 - np.abs(t - scare_at[pump]) / WARNING_HOURS, 0.0, 1.0) ** 2
        reading = base * (1 + 0.05 * model[pump]) + rise * sign + noise * rng.standard_normal(len(pump))
        reading += 0.3 * noise * np.sin(t / 24.0 * 2 * np.pi)  # a daily cycle
        blocks.append((pump, t, np.full(len(pump), number, dtype=np.int32), reading))
    pump = np.concatenate([b[0] for b in blocks])
    t = np.concatenate([b[1] for b in blocks])
    sensor = np.concatenate([b[2] for b in blocks])
    reading = np.round(np.concatenate([b[3] for b in blocks]), 3)
    order = np.lexsort((t, pump))  # a log is written in time order
    pump, t, sensor, reading = pump[order], t[order], sensor[order], reading[order]
    stamps = start[pump] + np.round(t * 3600).astype("timedelta64[s]")
    names = np.array([f"pump-{i:05d}" for i in range(pumps)])
    observations = pa.table({
        "pump": pa.DictionaryArray.from_arrays(pa.array(pump.astype(np.int32)), pa.array(names)),
        "time": pa.array(stamps),
        "sensor": pa.DictionaryArray.from_arrays(pa.array(sensor), pa.array(list(SENSORS))),
        "reading": pa.array(reading),
    })  # fmt: skip
    labels = pa.table({"pump": pa.array(names), "failed": pa.array(failed.astype(np.int64))})
    static = pa.table({"pump": pa.array(names), "model": pa.array(model), "age_years": pa.array(age)})
    return observations, labels, static


def write(table: pa.Table, path: Path, fmt: str) -> Path:
    path = path.with_suffix(".parquet" if fmt == "parquet" else ".csv")
    if fmt == "parquet":
        pq.write_table(table, path)
    else:
        pa_csv.write_csv(table, path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pumps", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv")
    parser.add_argument("--out", required=True, help="a folder for observations, labels and static")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    observations, labels, static = make_log(args.pumps, args.seed)
    for name, table in (("observations", observations), ("labels", labels), ("static", static)):
        path = write(table, out / name, args.format)
        print(f"wrote {table.num_rows:,} rows to {path}")


if __name__ == "__main__":
    main()
