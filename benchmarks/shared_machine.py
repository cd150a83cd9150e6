"""Training on a shared machine: one epoch of the P1 MR-MoE recipe with torch's thread count fixed at one or
at every core, and with ``training.threads: auto``, alone on the machine and beside one other busy process.

    python benchmarks/shared_machine.py --out benchmarks/results/shared-machine.json
    python benchmarks/shared_machine.py --out benchmarks/results/shared-machine.json --table

Each setting runs ``tsmoe train configs/mrmoe-physionet2012.yaml --set training.max_epochs=1`` in its own
process (nothing set in its environment: torch starts one thread per core, as for a user); the busy process
is a Python loop on one core, started before the run and stopped after it. Reported per setting: the
epoch's seconds and the thread count the run used (both from its ``meta.json``). Run it on an otherwise
idle machine: the point is the one busy process it adds.
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
from tsmoe.io import write_json

RECIPE = "configs/mrmoe-physionet2012.yaml"
SETTINGS = ("auto", "1", str(os.cpu_count() or 1))  # training.threads


def one_epoch(threads: str, busy: bool) -> dict:
    """Train one epoch with ``training.threads`` (beside a busy process if ``busy``); its seconds and threads."""
    environment = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    loop = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        with tempfile.TemporaryDirectory() as folder:
            command = [str(Path(sys.executable).with_name("tsmoe")), "train", RECIPE, "--out", folder, "--overwrite",
                       "--set", "training.max_epochs=1", "--set", f"training.threads={threads}"]  # fmt: skip
            subprocess.run(command, env=environment, check=True, stdout=subprocess.DEVNULL)
            meta = json.loads((Path(folder) / "meta.json").read_text())
    finally:
        if loop is not None:
            loop.kill()
            loop.wait()
    return {"threads_setting": threads, "busy_process": busy, "threads_used": meta["threads"],
            "seconds_per_epoch": meta["seconds_per_epoch"]}  # fmt: skip


def markdown_table(result: dict) -> str:
    """Seconds per epoch for each setting, alone and beside one busy process (threads used in brackets)."""
    runs = {(r["threads_setting"], r["busy_process"]): r for r in result["runs"]}
    lines = ["| training.threads | alone: s / epoch (threads) | one other busy process: s / epoch (threads) |",
             "|---|---|---|"]  # fmt: skip
    for setting in dict.fromkeys(r["threads_setting"] for r in result["runs"]):
        cells = [f"{runs[(setting, busy)]['seconds_per_epoch']:.0f} ({runs[(setting, busy)]['threads_used']})"
                 if (setting, busy) in runs else "" for busy in (False, True)]  # fmt: skip
        lines.append(f"| {setting} | " + " | ".join(cells) + " |")
    lines.append(f"\n{result['cpus']} cores; one epoch of `{RECIPE}`.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="results JSON to write (or, with --table, to read)")
    parser.add_argument("--table", action="store_true", help="print the markdown table of an existing --out file")
    args = parser.parse_args()
    if args.table:
        print(markdown_table(json.loads(args.out.read_text())))
        return
    runs = []
    for threads in SETTINGS:
        for busy in (False, True):
            runs.append(one_epoch(threads, busy))
            print(runs[-1], flush=True)
    command = f"python benchmarks/shared_machine.py --out {args.out}"
    write_json(args.out, {"protocol": "shared-machine", "command": command, "machine": machine(),
                          "cpus": os.cpu_count(), "runs": runs})  # fmt: skip
    print(markdown_table(json.loads(args.out.read_text())))


if __name__ == "__main__":
    main()
