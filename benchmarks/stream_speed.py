"""Streaming updates against recomputing: the cost of one new observation for an entity with a history.

The P1 recipe's MR-MoE (``configs/mrmoe-physionet2012.yaml``: 3 CfC experts, gate, feature and temporal
attention, observation decay), built for PhysioNet 2012's 37 variables and 5 descriptors with the quantile
tables of the real stays, weights as initialised (the cost of an update does not depend on them). The
observations are real PhysioNet stays' steps, one after another, at their real gaps.

For each history length L (10, 100, 200, 1,000 steps), one thread, subnormals flushed, in three rounds
(each number the median of the rounds; the results keep the ratios' range):

- ``update``: the median time of ``StreamingPredictor.update`` for one entity that has seen L steps;
- ``update, 1,000 entities``: ``update_many`` with one update for each of 1,000 entities that have each
  seen L steps (fed to them as L batches of updates), per update;
- ``recompute``: what a stream without state does after each observation: the model's forward over the
  whole history (L + 1 steps), for one entity, and for the 1,000 as one batch (per entity);
- the tensor operations one update runs (counted), the cost of one small operation (``dispatch_us``:
  their floor in eager PyTorch), and the memory the 1,000 entities' attention states take.

    python benchmarks/stream_speed.py --out benchmarks/results/stream-speed.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from timing import median_seconds
from torch.utils._python_dispatch import TorchDispatchMode

from tsmoe import Estimator
from tsmoe.config import load_config
from tsmoe.data.irregular import IrregularDataset, IrregularNormalizer, IrregularSet, collate_irregular
from tsmoe.data.sources.physionet2012 import load_physionet2012
from tsmoe.experiments.results import machine
from tsmoe.models.registry import build_model
from tsmoe.training.numerics import flushed_subnormals

ROOT = Path(__file__).resolve().parents[1]


def estimator_of_recipe() -> tuple[Estimator, object]:
    """The recipe's MR-MoE with the real data's preprocessing (untrained weights), and the data."""
    data = load_physionet2012()
    config = load_config(ROOT / "configs" / "mrmoe-physionet2012.yaml", ["trainer.accelerator=cpu"])
    estimator = Estimator.from_config(config)
    dims = {"n_features": len(data.variables), "n_static": len(data.static_names), "n_classes": 2}
    torch.manual_seed(0)
    estimator.model_ = build_model(config.model, dims, "binary", "irregular").eval()
    estimator.state_ = IrregularNormalizer.fit(data, "quantile").state()
    estimator.meta_ = {"task": "binary", "input_kind": "irregular", "dims": dims,
                       "channel_names": list(data.variables), "static_names": list(data.static_names)}  # fmt: skip
    return estimator, data


def real_steps(data, count: int) -> tuple[list[float], list[dict[str, float]]]:
    """``count`` real steps, stays one after another, as (times, observations)."""
    times, observed, clock = [], [], 0.0
    previous = 0.0
    for step in range(count):
        t = float(data.times[step % len(data.times)])
        clock += max(t - previous, 1 / 60) if t > previous else 1.0  # a new stay: an hour later
        previous = t
        times.append(clock)
        row = data.values[step % len(data.times)]
        observed.append({name: float(row[j]) for j, name in enumerate(data.variables) if not np.isnan(row[j])})
    return times, observed


class CountedOps(TorchDispatchMode):
    """Counts the tensor operations (ATen calls) run inside the block."""

    def __init__(self) -> None:
        super().__init__()
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops += 1
        return func(*args, **(kwargs or {}))


def dispatch_seconds() -> float:
    """The cost of one small tensor operation (an addition of two 64-vectors): the floor of each of an
    update's operations in eager PyTorch."""
    a, b = torch.zeros(1, 64), torch.zeros(1, 64)
    return median_seconds(lambda: [torch.add(a, b) for _ in range(1000)], 9) / 1000


def measure(estimator, data, history: int, entities: int, repeats: int) -> dict:
    times, observed = real_steps(data, history + repeats + 1)
    stream = estimator.stream()
    stream.open("e", start=0.0)
    for t, obs in zip(times[:history], observed[:history], strict=True):
        stream.update("e", t, obs)
    position = iter(range(history, history + repeats + 1))

    def one_update() -> None:
        i = next(position)
        stream.update("e", times[i], observed[i])

    single = median_seconds(one_update, repeats, warmup=0)
    with CountedOps() as counted:
        one_update()
    many = estimator.stream()
    for t, obs in zip(times[:history], observed[:history], strict=True):
        many.update_many([(e, t, obs) for e in range(entities)])
    step = [history]

    def batched() -> None:
        i = step[0]
        many.update_many([(e, times[i], observed[i]) for e in range(entities)])
        step[0] += 1

    batch_repeats = max(1, min(repeats, 5))
    many_seconds = median_seconds(batched, batch_repeats, warmup=0) / entities

    # recompute: the whole history (L + 1 steps, as one stay) through the model's forward
    values = np.full((history + 1, len(data.variables)), np.nan, dtype=np.float32)
    for k, obs in enumerate(observed[: history + 1]):
        for name, value in obs.items():
            values[k, data.variables.index(name)] = value
    one = IrregularSet(
        record_ids=np.array([0]), offsets=np.array([0, history + 1]), times=np.array(times[: history + 1], np.float32),
        values=values, static=data.static[:1], labels=np.array([0]), variables=data.variables,
        static_names=data.static_names,
    )  # fmt: skip
    item = IrregularDataset(one, IrregularNormalizer.from_state(estimator.state_))[0]
    model = estimator.model_
    with torch.no_grad():
        single_batch = collate_irregular([item])
        recompute = median_seconds(lambda: model(single_batch), repeats, warmup=0)
        big = collate_irregular([item] * entities)
        recompute_many = median_seconds(lambda: model(big), 1 if history >= 200 else batch_repeats, warmup=0) / entities
    return {
        "history": history,
        "update_ms": single * 1e3,
        "update_batched_ms": many_seconds * 1e3,
        "recompute_ms": recompute * 1e3,
        "recompute_batched_ms": recompute_many * 1e3,
        "speedup": recompute / single,
        "speedup_batched": recompute_many / many_seconds,
        "ops_per_update": counted.ops,
        "memory_mib_batched": many.slots.before.memory.floats() * 4 / 2**20,
    }


def markdown_table(result: dict) -> str:
    """Milliseconds per update and the ratio of recomputing to updating, per history length."""
    n = f"{result['entities']:,}"
    lines = [
        f"| history (steps) | update, 1 entity (ms) | recompute, 1 entity (ms) | recompute / update | update, {n} "
        f"entities (ms each) | recompute, {n} entities (ms each) | recompute / update | attention memory, {n} "
        "entities (MiB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['history']:,} | {row['update_ms']:.2f} | {row['recompute_ms']:.2f} | {row['speedup']:.1f}x | "
            f"{row['update_batched_ms']:.3f} | {row['recompute_batched_ms']:.3f} | {row['speedup_batched']:.1f}x | "
            f"{row['memory_mib_batched']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--histories", type=int, nargs="+", default=[10, 100, 200, 1000])
    parser.add_argument("--entities", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3, help="measure every history this many times; the "
                        "table gives each number's median over the rounds, the results also their range")
    args = parser.parse_args()
    torch.set_num_threads(1)
    estimator, data = estimator_of_recipe()
    rows = []
    dispatch_us = dispatch_seconds() * 1e6
    with flushed_subnormals(True):
        for history in args.histories:
            rounds = [measure(estimator, data, history, args.entities, args.repeats) for _ in range(args.rounds)]
            row = {key: float(np.median([r[key] for r in rounds])) for key in rounds[0]}
            row["history"] = history
            row["range"] = {key: [min(r[key] for r in rounds), max(r[key] for r in rounds)]
                            for key in ("speedup", "speedup_batched")}  # fmt: skip
            rows.append(row)
            print(json.dumps(row), flush=True)
    result = {
        "protocol": "stream-speed",
        "command": "python benchmarks/stream_speed.py --out " + args.out,
        "rounds": args.rounds,
        "machine": machine(),
        "entities": args.entities,
        "dispatch_us": dispatch_us,
        "rows": rows,
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
