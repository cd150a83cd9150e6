"""Protocol P5, liquid experts: training throughput and activation memory of MR-MoE itself (the registry's
``mrmoe_no_attention``: K CfC experts at their own time scales, the step gate, a readout per expert, the
static head) against the same function assembled from ncps modules (one CfC cell per expert), one ncps
CfC of the same total width, and torch.nn.LSTM of the same total width. All measured side by side in one run.

    python benchmarks/p5_liquid_speed.py --out benchmarks/results/p5-liquid-speed.json

Each variant runs full training steps (forward, backward, Adam) on the same irregular batch in the form
``collate_irregular`` gives. ``--batches synthetic`` (the default): ``B`` sequences of ``T`` steps of
PhysioNet's 37 variables (values and mask) and 5 static descriptors, with a random elapsed time per sample
and step; ``real``: ``B`` PhysioNet 2012 stays cut to ``T`` steps; ``etth1``: ``B`` ETTh1 windows of ``T``
hourly rows (7 variables, as the liquid forecasters read them, channels joint). ``--settings 4,64,100``
measures chosen settings (experts, hidden size, steps) only. Reported per variant: sequences
per second (median over repeats, the variants taking turns within each repeat), activation memory (bytes
of tensors autograd saves for backward, counted exactly by a saved-tensor hook), FLOPs per step (torch's
FlopCounterMode) and the achieved fraction of the machine's dense matmul rate, which the script measures
itself with one large ``torch.matmul``. As tsmoe trains, subnormal floats are flushed to zero and freed memory
is kept in the process for the next step (``--subnormals keep`` and ``--freed-memory leave`` measure without
them; the process setting applies to every variant alike).

"Same total width" means the single networks have ``K * hidden`` state units (and the ncps CfC
``K * units`` backbone units), as many as the K experts together; the experts' weights are
block-diagonal across experts, so they cost fewer FLOPs than one network of that width.

The tsmoe variant is the model ``tsmoe train`` builds; the ncps mixture computes the same function from
ncps modules as one would by hand (a ``CfCCell`` and an ``nn.Linear`` readout per expert, looped over
steps and experts, then the weighted sum and MR-MoE's own gate and head). Before timing, the script
copies MR-MoE's weights into the ncps mixture and checks that both give the same output.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import torch
from ncps.torch import CfCCell as NcpsCfCCell
from timing import interleaved_median_seconds, median_seconds
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from tsmoe.experiments.results import machine
from tsmoe.io import write_json
from tsmoe.layers.liquid import CfCCell, LiquidCell
from tsmoe.models.mrmoe import MRMoE
from tsmoe.models.output import unpack
from tsmoe.models.registry import build_model
from tsmoe.training.memory import keep_freed_memory
from tsmoe.training.numerics import flushed_subnormals

PHYSIONET_FEATURES, PHYSIONET_STATIC, D_MODEL = 37, 5, 32
Batch = dict[str, torch.Tensor]


def mrmoe(k: int, hidden: int, units: int, n_features: int, n_static: int) -> MRMoE:
    """MR-MoE without attention as the registry builds it: K CfC experts, the step gate, readouts, the head."""
    config = {"name": "mrmoe_no_attention", "experts": k, "hidden_size": hidden, "backbone_units": units,
              "d_model": D_MODEL, "gate_hidden": 32, "head_hidden": 32, "dropout": 0.0}  # fmt: skip
    return build_model(config, {"n_features": n_features, "n_static": n_static, "n_classes": 2}, "binary", "irregular")


class TsmoeMRMoE(nn.Module):
    """tsmoe: the model itself (all experts in one scan with a hand-written backward pass)."""

    def __init__(self, k: int, hidden: int, units: int, n_features: int, n_static: int) -> None:
        super().__init__()
        self.model = mrmoe(k, hidden, units, n_features, n_static)

    def forward(self, batch: Batch) -> torch.Tensor:
        return unpack(self.model(batch))[0]


class AutogradLoopCfCCell(CfCCell):
    """tsmoe's CfC cell differentiated by autograd step by step (the loop tsmoe ran before its hand-written scan)."""

    scan = LiquidCell.scan


class TsmoeMRMoEAutogradLoop(TsmoeMRMoE):
    """The model with its experts' recurrence differentiated by autograd: shows what the scan adds."""

    def __init__(self, k: int, hidden: int, units: int, n_features: int, n_static: int) -> None:
        super().__init__(k, hidden, units, n_features, n_static)
        cell = AutogradLoopCfCCell(2 * n_features, hidden, k, "default", units)
        cell.load_state_dict(self.model.experts.cell.state_dict())
        self.model.experts.cell = cell


class NcpsMixture(nn.Module):
    """MR-MoE's function from ncps: one ``ncps.torch.CfCCell`` per expert, looped over steps and experts,
    a readout per expert, then MR-MoE's gate and head."""

    def __init__(self, k: int, hidden: int, units: int, n_features: int, n_static: int) -> None:
        super().__init__()
        reference = mrmoe(k, hidden, units, n_features, n_static)
        self.cells = nn.ModuleList(NcpsCfCCell(2 * n_features, hidden, backbone_units=units) for _ in range(k))
        self.register_buffer("tau", reference.experts.tau.clone())
        self.min_dt = reference.params.min_dt
        self.readouts = nn.ModuleList(nn.Linear(hidden, D_MODEL) for _ in range(k))
        self.gate, self.head = reference.gate, reference.head
        self.hidden = hidden

    def forward(self, batch: Batch) -> torch.Tensor:
        u = torch.cat([batch["values"], batch["mask"]], dim=-1)
        dt, step_mask = batch["dt"].clamp(min=self.min_dt), batch["step_mask"]
        h = [u.new_zeros(u.shape[0], self.hidden) for _ in self.cells]
        states = []
        for t in range(u.shape[1]):
            keep = step_mask[:, t : t + 1] > 0
            for k, cell in enumerate(self.cells):
                new, _ = cell(u[:, t], h[k], dt[:, t : t + 1] / self.tau[k])
                h[k] = torch.where(keep, new, h[k])
            states.append(torch.stack(h, dim=1))
        states = torch.stack(states, dim=1)  # (B, T, K, H)
        weights, _ = self.gate(u, states.flatten(2))
        outputs = torch.stack([r(states[:, :, k]) for k, r in enumerate(self.readouts)], dim=2)
        mixed = torch.einsum("btk,btkd->btd", weights, outputs)
        last = mixed[torch.arange(u.shape[0]), batch["lengths"] - 1]
        return self.head(last, batch["static"], batch["static_mask"])

    @torch.no_grad()
    def copy_from(self, model: MRMoE) -> None:
        """Take MR-MoE's weights (ncps's backbone is one linear map of ``[u, h]``; its heads ff1, ff2,
        time_a, time_b are tsmoe's ``head_weight`` in that order)."""
        cell = model.experts.cell
        for k, (theirs, readout) in enumerate(zip(self.cells, self.readouts, strict=True)):
            backbone = theirs.backbone[0]
            backbone.weight.copy_(torch.cat([cell.backbone_input_weight[k], cell.backbone_state_weight[k]]).T)
            backbone.bias.copy_(cell.backbone_bias[k])
            for i, head in enumerate((theirs.ff1, theirs.ff2, theirs.time_a, theirs.time_b)):
                head.weight.copy_(cell.head_weight[k][:, i * self.hidden : (i + 1) * self.hidden].T)
                head.bias.copy_(cell.head_bias[k][i * self.hidden : (i + 1) * self.hidden])
            readout.weight.copy_(model.readout[k].T)
            readout.bias.copy_(model.readout_bias[k])


class NcpsSingle(nn.Module):
    """One ncps CfC cell of the same total width: ``K * hidden`` state and ``K * units`` backbone units."""

    def __init__(self, k: int, hidden: int, units: int, n_features: int, n_static: int) -> None:
        super().__init__()
        self.cell = NcpsCfCCell(2 * n_features, k * hidden, backbone_units=k * units)
        self.head = nn.Linear(k * hidden, 1)
        self.width = k * hidden

    def forward(self, batch: Batch) -> torch.Tensor:
        u, dt = torch.cat([batch["values"], batch["mask"]], dim=-1), batch["dt"]
        h = u.new_zeros(u.shape[0], self.width)
        for t in range(u.shape[1]):
            new, _ = self.cell(u[:, t], h, dt[:, t : t + 1])
            h = torch.where(batch["step_mask"][:, t : t + 1] > 0, new, h)
        return self.head(h).squeeze(-1)


class TorchLSTM(nn.Module):
    """``torch.nn.LSTM`` of total width ``K * hidden`` over ``[values, mask, log1p(dt)]``."""

    def __init__(self, k: int, hidden: int, units: int, n_features: int, n_static: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(2 * n_features + 1, k * hidden, batch_first=True)
        self.head = nn.Linear(k * hidden, 1)

    def forward(self, batch: Batch) -> torch.Tensor:
        u = torch.cat([batch["values"], batch["mask"], torch.log1p(batch["dt"]).unsqueeze(-1)], -1)
        out, _ = self.lstm(u)
        return self.head(out[:, -1]).squeeze(-1)


VARIANTS: dict[str, type[nn.Module]] = {
    "tsmoe_mrmoe": TsmoeMRMoE,
    "tsmoe_mrmoe_autograd_loop": TsmoeMRMoEAutogradLoop,
    "ncps_assembled": NcpsMixture,
    "ncps_cfc_same_width": NcpsSingle,
    "torch_lstm_same_width": TorchLSTM,
}


def make_batch(batch: int, steps: int, seed: int = 0) -> Batch:
    """A synthetic irregular batch in the form ``collate_irregular`` gives (every step valid), shaped like
    PhysioNet's: 37 variables, a fifth of them observed per step, and 5 static descriptors."""
    generator = torch.Generator().manual_seed(seed)
    mask = (torch.rand(batch, steps, PHYSIONET_FEATURES, generator=generator) < 0.2).float()
    values = torch.randn(batch, steps, PHYSIONET_FEATURES, generator=generator) * mask
    dt = torch.rand(batch, steps, generator=generator) * 2
    return {
        "values": values, "mask": mask, "dt": dt, "times": dt.cumsum(1), "step_mask": torch.ones(batch, steps),
        "lengths": torch.full((batch,), steps), "static": torch.randn(batch, PHYSIONET_STATIC, generator=generator),
        "static_mask": torch.ones(batch, PHYSIONET_STATIC),
        "target": (torch.rand(batch, generator=generator) < 0.14).float(),
    }  # fmt: skip


def real_batch(batch: int, steps: int) -> Batch:
    """``batch`` real PhysioNet 2012 stays (the first in record order with at least ``steps`` observation
    times), each cut to its first ``steps`` steps, z-scored with statistics of every stay."""
    from tsmoe.data.irregular import IrregularDataset, IrregularNormalizer, collate_irregular
    from tsmoe.data.sources.physionet2012 import load_physionet2012

    data = load_physionet2012()
    dataset = IrregularDataset(data, IrregularNormalizer.fit(data))
    chosen = [int(i) for i in (data.lengths() >= steps).nonzero()[0][:batch]]
    if len(chosen) < batch:
        raise SystemExit(f"only {len(chosen)} stays have {steps} steps; real batches go up to T = 100")
    timed = ("values", "mask", "times")
    items = [{k: (v[:steps] if k in timed else v) for k, v in dataset[i].items()} for i in chosen]
    return {**collate_irregular(items), "target": torch.stack([item["target"] for item in items]).float()}


def etth1_batch(batch: int, steps: int) -> Batch:
    """``batch`` real ETTh1 windows of ``steps`` hourly rows (7 variables, every value observed, the elapsed
    time from the timestamps), spread evenly over P4's training rows and z-scored with them, as the liquid
    forecasters read them (:func:`tsmoe.models.window_forecaster.window_records`, channels joint). The target
    is real too: whether the oil temperature rises in the next hour."""
    from tsmoe.data.prepared import prepare_forecasting
    from tsmoe.data.sources.ett import load_ett
    from tsmoe.models.window_forecaster import window_records

    train = prepare_forecasting(load_ett(), steps, 1, lengths=(12 * 30 * 24, 4 * 30 * 24, 4 * 30 * 24)).train
    chosen = torch.linspace(0, len(train) - 1, batch).long().tolist()
    items = [train[i] for i in chosen]
    x, y = torch.stack([item["x"] for item in items]), torch.stack([item["y"] for item in items])
    records = window_records(x, torch.stack([item["dt"] for item in items]))
    return {**records, "target": (y[:, 0, -1] > x[:, -1, -1]).float()}


BATCHES: dict[str, Callable[[int, int], Batch]] = {"synthetic": make_batch, "real": real_batch, "etth1": etth1_batch}


def sizes(batch: Batch) -> tuple[int, int]:
    """A batch's ``(n_features, n_static)``: what every variant is built for."""
    return batch["values"].shape[-1], batch["static"].shape[-1]


def check_same_function(k: int, hidden: int, units: int, batch: Batch) -> float:
    """The largest difference between MR-MoE's output and the ncps mixture's given MR-MoE's weights, on the
    first 8 sequences of ``batch`` cut to 20 steps."""
    torch.manual_seed(0)
    ours = TsmoeMRMoE(k, hidden, units, *sizes(batch)).eval()
    theirs = NcpsMixture(k, hidden, units, *sizes(batch)).eval()
    theirs.gate, theirs.head = ours.model.gate, ours.model.head
    theirs.copy_from(ours.model)
    timed = ("values", "mask", "dt", "times", "step_mask")
    small = {key: (value[:8, :20] if key in timed else value[:8]) for key, value in batch.items()}
    small["lengths"] = small["lengths"].clamp(max=20)
    with torch.no_grad():
        return float((ours(small) - theirs(small)).abs().max())


def training_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: Batch) -> None:
    loss = nn.functional.binary_cross_entropy_with_logits(model(batch), batch["target"])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def saved_activation_bytes(model: nn.Module, batch: Batch) -> int:
    """Bytes of the distinct tensors autograd saves for backward in one forward pass."""
    seen: dict[tuple[int, int], int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        key = (tensor.untyped_storage().data_ptr(), tensor.untyped_storage().nbytes())
        seen[key] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = nn.functional.binary_cross_entropy_with_logits(model(batch), batch["target"])
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    del loss
    return sum(n for (ptr, _), n in seen.items() if ptr not in params)


def flops_per_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: Batch) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        training_step(model, optimizer, batch)
    return counter.get_total_flops()


def matmul_rate() -> float:
    """The machine's dense float32 matmul rate in FLOP/s (one 2048 x 2048 product, median of 5)."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    seconds = median_seconds(lambda: torch.matmul(a, b), 5, warmup=1)
    return 2 * 2048**3 / seconds


def measure(k: int, hidden: int, batch: Batch, units: int, repeats: int) -> dict[str, dict]:
    batch_size = batch["values"].shape[0]
    models = {}
    for name, cls in VARIANTS.items():
        torch.manual_seed(0)
        model = cls(k, hidden, units, *sizes(batch))
        models[name] = (model, torch.optim.Adam(model.parameters(), lr=1e-3))
    seconds = interleaved_median_seconds(
        {name: lambda m=model, o=optimizer: training_step(m, o, batch) for name, (model, optimizer) in models.items()},
        repeats,
    )
    row = {}
    for name, (model, optimizer) in models.items():
        row[name] = {
            "sequences_per_second": batch_size / seconds[name],
            "seconds_per_step": seconds[name],
            "activation_mib": saved_activation_bytes(model, batch) / 2**20,
            "parameters": sum(p.numel() for p in model.parameters()),
            "gflop_per_step": flops_per_step(model, optimizer, batch) / 1e9,
        }
    return row


def markdown_table(result: dict) -> str:
    """The results as a markdown table: throughput (sequences/s) and activation memory per variant."""
    names = list(VARIANTS)
    lines = [
        "| K | H | T | "
        + " | ".join(f"{n} seq/s (MiB)" for n in names)
        + " | tsmoe / ncps-assembled | tsmoe / ncps same width |",
        "|---|---|---|" + "---|" * (len(names) + 2),
    ]
    for r in result["results"]:
        cells = [
            f"{r['variants'][n]['sequences_per_second']:.0f} ({r['variants'][n]['activation_mib']:.0f})" for n in names
        ]
        lines.append(
            f"| {r['experts']} | {r['hidden']} | {r['steps']} | "
            + " | ".join(cells)
            + f" | {r['speedup_vs_ncps_assembled']:.2f}x | {r['speedup_vs_ncps_same_width']:.2f}x |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="results JSON to write (or, with --table, to read)")
    parser.add_argument("--table", action="store_true", help="print the markdown table of an existing --out file")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--units", type=int, default=64, help="CfC backbone width")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="one small setting (a smoke test)")
    parser.add_argument("--batches", choices=list(BATCHES), default="synthetic",
                        help="synthetic, PhysioNet 2012 stays (real; T up to 100) or ETTh1 windows")  # fmt: skip
    parser.add_argument("--settings", nargs="+", metavar="K,H,T",
                        help="only these settings (experts, hidden size, steps), e.g. 4,64,100")  # fmt: skip
    parser.add_argument("--subnormals", choices=["flush", "keep"], default="flush",
                        help="flush subnormal floats to zero, as tsmoe trains (default), or keep them")  # fmt: skip
    parser.add_argument("--freed-memory", choices=["keep", "leave"], default="keep",
                        help="keep freed memory in the process, as tsmoe trains (default; every variant), or "
                        "leave malloc's defaults (tsmoe.training.memory)")  # fmt: skip
    args = parser.parse_args()
    if args.table:
        print(markdown_table(json.loads(Path(args.out).read_text())))
        return
    freed_memory_kept = keep_freed_memory(args.freed_memory == "keep")

    peak = matmul_rate()
    settings = (
        [(4, 16, 20)]
        if args.quick
        else [tuple(int(n) for n in setting.split(",")) for setting in args.settings]
        if args.settings
        else (
            [(k, 32, 100) for k in (2, 4, 8)]  # experts grow
            + [(4, h, 100) for h in (16, 64)]  # hidden size grows (32 is above)
            + [(4, 32, t) for t in ((50,) if args.batches == "real" else (50, 200))]  # length grows (100 is above)
        )
    )
    results = []
    for k, hidden, steps in settings:
        batch = BATCHES[args.batches](args.batch, steps)
        difference = check_same_function(k, hidden, args.units, batch)
        if difference > 1e-4:
            raise SystemExit(f"K={k} H={hidden}: the ncps mixture differs from MR-MoE by {difference:.2e}")
        with flushed_subnormals(args.subnormals == "flush"):
            row = measure(k, hidden, batch, args.units, args.repeats)
        for entry in row.values():
            counted = entry["gflop_per_step"] > 0  # FlopCounterMode cannot see inside torch's fused LSTM kernel
            entry["fraction_of_matmul_peak"] = (
                entry["gflop_per_step"] * 1e9 / entry["seconds_per_step"] / peak if counted else None
            )
        fused, assembled, single = row["tsmoe_mrmoe"], row["ncps_assembled"], row["ncps_cfc_same_width"]
        results.append(
            {
                "experts": k,
                "hidden": hidden,
                "steps": steps,
                "batch": args.batch,
                "variants": row,
                "ncps_mixture_max_difference": difference,
                "speedup_vs_ncps_assembled": fused["sequences_per_second"] / assembled["sequences_per_second"],
                "speedup_vs_ncps_same_width": fused["sequences_per_second"] / single["sequences_per_second"],
            }
        )
        print(
            f"K={k} H={hidden} T={steps}: "
            + ", ".join(
                f"{n} {v['sequences_per_second']:.0f} seq/s {v['activation_mib']:.1f} MiB" for n, v in row.items()
            )
            + f" | tsmoe / ncps-assembled {results[-1]['speedup_vs_ncps_assembled']:.2f}x,"
            f" tsmoe / ncps same width {results[-1]['speedup_vs_ncps_same_width']:.2f}x",
            flush=True,
        )
    command = " ".join(f"--{k.replace('_', '-')}={v}" if not isinstance(v, bool) else f"--{k.replace('_', '-')}"
                       for k, v in vars(args).items() if v not in (False, None))  # fmt: skip
    write_json(
        Path(args.out),
        {"command": f"python benchmarks/p5_liquid_speed.py {command}", "matmul_gflops": peak / 1e9,
         "machine": machine(), "subnormals": args.subnormals, "freed_memory_kept": freed_memory_kept,
         "batches": args.batches, "results": results},
    )  # fmt: skip


if __name__ == "__main__":
    main()
