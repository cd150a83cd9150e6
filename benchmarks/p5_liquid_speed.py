"""Protocol P5, liquid experts: training throughput and activation memory of tsmoe's fused multi-rate
experts against the same mixture assembled from ncps modules (one CfC cell per expert), one ncps CfC
of the same total width, and torch.nn.LSTM of the same total width. All measured side by side in one run.

    python benchmarks/p5_liquid_speed.py --out benchmarks/results/p5-liquid-speed.json

Each variant runs full training steps (forward, backward, Adam) on the same irregular batch: ``B``
sequences of ``T`` steps with ``2F`` inputs (values and mask of PhysioNet's 37 variables) and a random
elapsed time per sample and step. Reported per variant: sequences per second (median over repeats, the
variants taking turns within each repeat),
activation memory (bytes of tensors autograd saves for backward, counted exactly by a saved-tensor hook),
FLOPs per step (torch's FlopCounterMode) and the achieved fraction of the machine's dense matmul rate,
which the script measures itself with one large ``torch.matmul``.

"Same total width" means the single networks have ``K * hidden`` state units (and the ncps CfC
``K * units`` backbone units), as many as the K experts together; the experts' weights are
block-diagonal across experts, so they cost fewer FLOPs than one network of that width.

The mixture is the same function in every MoE variant: K CfC experts (``dt / tau_k`` per expert), a
readout per expert, tsmoe's step gate over ``[input, states]``, the gated sum of the readouts. What
differs is how the experts and the gated sum are computed: tsmoe's fused mixture runs MR-MoE's own code
(all experts in one scan, the gated sum of the readouts as one product, ``gated_readout``); the ncps
mixture is assembled from modules as one would by hand (a ``CfCCell`` and an ``nn.Linear`` readout per
expert, then the weighted sum).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from ncps.torch import CfCCell as NcpsCfCCell
from timing import interleaved_median_seconds, median_seconds
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from tsmoe.experiments.results import machine
from tsmoe.io import write_json
from tsmoe.layers.gate import StepGate, gated_readout
from tsmoe.layers.liquid import CfCCell, LiquidCell, LiquidExperts

N_FEATURES = 37


class FusedMixture(nn.Module):
    """tsmoe: K CfC experts advanced together (one scan), gate and gated readout vectorised over time, as
    in :class:`tsmoe.models.mrmoe.MRMoE`."""

    def __init__(self, k: int, hidden: int, units: int, d_model: int) -> None:
        super().__init__()
        self.experts = LiquidExperts(CfCCell(2 * N_FEATURES, hidden, k, "default", units), torch.logspace(-0.3, 1.4, k))
        self.readout = nn.Parameter(torch.randn(k, hidden, d_model) / hidden**0.5)
        self.readout_bias = nn.Parameter(torch.zeros(k, d_model))
        self.gate = StepGate(2 * N_FEATURES + k * hidden, k, 32)
        self.head = nn.Linear(d_model, 1)

    def forward(self, u: torch.Tensor, dt: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        states, _ = self.experts(u, dt, mask)  # (B, T, K, H)
        weights, _ = self.gate(u, states.flatten(2))
        mixed = gated_readout(weights, states, self.readout, self.readout_bias)
        return self.head(mixed[:, -1]).squeeze(-1)


class AutogradLoopCfCCell(CfCCell):
    """tsmoe's CfC cell differentiated by autograd step by step (the loop tsmoe ran before its hand-written scan)."""

    scan = LiquidCell.scan


class FusedMixtureAutogradLoop(FusedMixture):
    """The fused mixture with the experts' recurrence differentiated by autograd: shows what the scan adds."""

    def __init__(self, k: int, hidden: int, units: int, d_model: int) -> None:
        super().__init__(k, hidden, units, d_model)
        cell = AutogradLoopCfCCell(2 * N_FEATURES, hidden, k, "default", units)
        cell.load_state_dict(self.experts.cell.state_dict())
        self.experts.cell = cell


class NcpsMixture(nn.Module):
    """The same mixture from ncps: one ``ncps.torch.CfCCell`` per expert, looped over steps and experts."""

    def __init__(self, k: int, hidden: int, units: int, d_model: int) -> None:
        super().__init__()
        self.cells = nn.ModuleList(NcpsCfCCell(2 * N_FEATURES, hidden, backbone_units=units) for _ in range(k))
        self.register_buffer("tau", torch.logspace(-0.3, 1.4, k))
        self.readouts = nn.ModuleList(nn.Linear(hidden, d_model) for _ in range(k))
        self.gate = StepGate(2 * N_FEATURES + k * hidden, k, 32)
        self.head = nn.Linear(d_model, 1)
        self.hidden = hidden

    def forward(self, u: torch.Tensor, dt: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, steps = u.shape[:2]
        h = [u.new_zeros(batch, self.hidden) for _ in self.cells]
        states = []
        for t in range(steps):
            keep = mask[:, t : t + 1] > 0
            for k, cell in enumerate(self.cells):
                new, _ = cell(u[:, t], h[k], dt[:, t : t + 1] / self.tau[k])
                h[k] = torch.where(keep, new, h[k])
            states.append(torch.stack(h, dim=1))
        states = torch.stack(states, dim=1)  # (B, T, K, H)
        weights, _ = self.gate(u, states.flatten(2))
        outputs = torch.stack([r(states[:, :, k]) for k, r in enumerate(self.readouts)], dim=2)
        mixed = torch.einsum("btk,btkd->btd", weights, outputs)
        return self.head(mixed[:, -1]).squeeze(-1)


class NcpsSingle(nn.Module):
    """One ncps CfC cell of the same total width: ``K * hidden`` state and ``K * units`` backbone units."""

    def __init__(self, k: int, hidden: int, units: int, d_model: int) -> None:
        super().__init__()
        self.cell = NcpsCfCCell(2 * N_FEATURES, k * hidden, backbone_units=k * units)
        self.head = nn.Linear(k * hidden, 1)
        self.width = k * hidden

    def forward(self, u: torch.Tensor, dt: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = u.new_zeros(u.shape[0], self.width)
        for t in range(u.shape[1]):
            new, _ = self.cell(u[:, t], h, dt[:, t : t + 1])
            h = torch.where(mask[:, t : t + 1] > 0, new, h)
        return self.head(h).squeeze(-1)


class TorchLSTM(nn.Module):
    """``torch.nn.LSTM`` of total width ``K * hidden`` over ``[input, log1p(dt)]``."""

    def __init__(self, k: int, hidden: int, units: int, d_model: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(2 * N_FEATURES + 1, k * hidden, batch_first=True)
        self.head = nn.Linear(k * hidden, 1)

    def forward(self, u: torch.Tensor, dt: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(torch.cat([u, torch.log1p(dt).unsqueeze(-1)], -1))
        return self.head(out[:, -1]).squeeze(-1)


VARIANTS: dict[str, type[nn.Module]] = {
    "tsmoe_fused": FusedMixture,
    "tsmoe_fused_autograd_loop": FusedMixtureAutogradLoop,
    "ncps_assembled": NcpsMixture,
    "ncps_cfc_same_width": NcpsSingle,
    "torch_lstm_same_width": TorchLSTM,
}


def make_batch(batch: int, steps: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    values = torch.randn(batch, steps, N_FEATURES, generator=generator)
    mask = (torch.rand(batch, steps, N_FEATURES, generator=generator) < 0.2).float()
    u = torch.cat([values * mask, mask], -1)
    dt = torch.rand(batch, steps, generator=generator) * 2
    step_mask = torch.ones(batch, steps)
    target = (torch.rand(batch, generator=generator) < 0.14).float()
    return u, dt, step_mask, target


def training_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: tuple[torch.Tensor, ...]) -> None:
    u, dt, mask, target = batch
    loss = nn.functional.binary_cross_entropy_with_logits(model(u, dt, mask), target)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def saved_activation_bytes(model: nn.Module, batch: tuple[torch.Tensor, ...]) -> int:
    """Bytes of the distinct tensors autograd saves for backward in one forward pass."""
    seen: dict[tuple[int, int], int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        key = (tensor.untyped_storage().data_ptr(), tensor.untyped_storage().nbytes())
        seen[key] = tensor.untyped_storage().nbytes()
        return tensor

    u, dt, mask, target = batch
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = nn.functional.binary_cross_entropy_with_logits(model(u, dt, mask), target)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    del loss
    return sum(n for (ptr, _), n in seen.items() if ptr not in params)


def flops_per_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: tuple[torch.Tensor, ...]) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        training_step(model, optimizer, batch)
    return counter.get_total_flops()


def matmul_rate() -> float:
    """The machine's dense float32 matmul rate in FLOP/s (one 2048 x 2048 product, median of 5)."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    seconds = median_seconds(lambda: torch.matmul(a, b), 5, warmup=1)
    return 2 * 2048**3 / seconds


def measure(k: int, hidden: int, steps: int, batch_size: int, units: int, repeats: int) -> dict[str, dict]:
    batch = make_batch(batch_size, steps)
    models = {}
    for name, cls in VARIANTS.items():
        torch.manual_seed(0)
        model = cls(k, hidden, units, 32)
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
        + " | fused / ncps-assembled | fused / ncps same width |",
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
    args = parser.parse_args()
    if args.table:
        print(markdown_table(json.loads(Path(args.out).read_text())))
        return

    peak = matmul_rate()
    settings = (
        [(4, 16, 20)]
        if args.quick
        else (
            [(k, 32, 100) for k in (2, 4, 8)]  # experts grow
            + [(4, h, 100) for h in (16, 64)]  # hidden size grows (32 is above)
            + [(4, 32, t) for t in (50, 200)]  # sequence length grows (100 is above)
        )
    )
    results = []
    for k, hidden, steps in settings:
        row = measure(k, hidden, steps, args.batch, args.units, args.repeats)
        for entry in row.values():
            counted = entry["gflop_per_step"] > 0  # FlopCounterMode cannot see inside torch's fused LSTM kernel
            entry["fraction_of_matmul_peak"] = (
                entry["gflop_per_step"] * 1e9 / entry["seconds_per_step"] / peak if counted else None
            )
        fused, assembled, single = row["tsmoe_fused"], row["ncps_assembled"], row["ncps_cfc_same_width"]
        results.append(
            {
                "experts": k,
                "hidden": hidden,
                "steps": steps,
                "batch": args.batch,
                "variants": row,
                "speedup_vs_ncps_assembled": fused["sequences_per_second"] / assembled["sequences_per_second"],
                "speedup_vs_ncps_same_width": fused["sequences_per_second"] / single["sequences_per_second"],
            }
        )
        print(
            f"K={k} H={hidden} T={steps}: "
            + ", ".join(
                f"{n} {v['sequences_per_second']:.0f} seq/s {v['activation_mib']:.1f} MiB" for n, v in row.items()
            )
            + f" | fused / ncps-assembled {results[-1]['speedup_vs_ncps_assembled']:.2f}x,"
            f" fused / ncps same width {results[-1]['speedup_vs_ncps_same_width']:.2f}x",
            flush=True,
        )
    command = " ".join(f"--{k}={v}" if not isinstance(v, bool) else f"--{k}" for k, v in vars(args).items()
                       if v not in (False, None))  # fmt: skip
    write_json(
        Path(args.out),
        {"command": f"python benchmarks/p5_liquid_speed.py {command}", "matmul_gflops": peak / 1e9,
         "machine": machine(), "results": results},
    )  # fmt: skip


if __name__ == "__main__":
    main()
