"""Protocol P5 for the sparse MoE layer: forward+backward time per token as the number of experts grows.

    OMP_NUM_THREADS=1 python benchmarks/p5_sparse_moe.py --out benchmarks/results/p5-sparse-moe.json
    python benchmarks/p5_sparse_moe.py --table benchmarks/results/p5-sparse-moe.json

At top-2, the sparse layer (gather/scatter dispatch: each expert runs only on its tokens) is timed against
a dense mixture that runs every expert on every token and keeps the same top-2 outputs, for E from 4 to
64, in one process, with the same tokens. The ceiling is this machine's own dense matmul rate, measured
here with one large ``torch.matmul``, so each layer's arithmetic rate can be given as a share of it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from timing import median_seconds

from tsmoe.experiments.results import machine
from tsmoe.io import write_json
from tsmoe.layers.sparse_moe import SparseMoE


def seconds(step, repeats: int) -> float:
    """Median wall time of ``step()`` over ``repeats`` runs, after two warm-up runs."""
    return median_seconds(step, repeats, warmup=2)


def matmul_gflops(size: int = 1024, repeats: int = 5) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    return 2 * size**3 / seconds(lambda: torch.matmul(a, b), repeats) / 1e9


def layer_step(layer: SparseMoE, h: torch.Tensor, owner: torch.Tensor, dense: bool):
    def step() -> None:
        layer.zero_grad(set_to_none=True)
        x = h.detach().requires_grad_()
        if dense:
            out = layer.dense_forward(x, layer.route(x, owner))
        else:
            out, _ = layer(x, owner)
        out.square().mean().backward()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experts", type=int, nargs="+", default=[4, 8, 16, 32, 64])
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--top-k", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out")
    parser.add_argument("--table", help="print the markdown table of a stored result")
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(Path(args.table).read_text())))
        return

    torch.manual_seed(0)
    h = torch.randn(args.tokens, args.d_model)
    owner = torch.zeros(args.tokens, dtype=torch.long)
    rows = []
    for experts in args.experts:
        layer = SparseMoE(args.d_model, experts, args.top_k)
        sparse = seconds(layer_step(layer, h, owner, dense=False), args.repeats)
        dense = seconds(layer_step(layer, h, owner, dense=True), args.repeats)
        # useful work: 3 matmuls of d x d per routed assignment, forward (x1) and backward (x2)
        flops = 3 * 2 * args.d_model * args.d_model * args.tokens * args.top_k * 3
        rows.append(
            {
                "experts": experts,
                "sparse_us_per_token": sparse / args.tokens * 1e6,
                "dense_us_per_token": dense / args.tokens * 1e6,
                "sparse_gflops": flops / sparse / 1e9,
            }
        )
        print(rows[-1], flush=True)
    base = rows[0]["sparse_us_per_token"]
    for row in rows:
        row["sparse_vs_e4"] = row["sparse_us_per_token"] / base
        row["dense_vs_sparse"] = row["dense_us_per_token"] / row["sparse_us_per_token"]
    result = {
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "table")},
        "matmul_gflops": matmul_gflops(),
        "command": "python " + " ".join(sys.argv),
        "machine": machine(),
        "rows": rows,
    }
    print(table(result))
    if args.out:
        write_json(Path(args.out), result)


def table(result: dict) -> str:
    s = result["settings"]
    lines = [
        f"{s['tokens']} tokens, d = {s['d_model']}, top-{s['top_k']}; matmul ceiling "
        f"{result['matmul_gflops']:.1f} GFLOP/s ({result['machine']['threads']} thread(s))",
        "",
        "| experts | sparse µs/token | vs E = 4 | dense µs/token | dense / sparse | sparse share of ceiling |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['experts']} | {r['sparse_us_per_token']:.2f} | {r['sparse_vs_e4']:.2f}x | "
            f"{r['dense_us_per_token']:.2f} | {r['dense_vs_sparse']:.1f}x | "
            f"{r['sparse_gflops'] / result['matmul_gflops']:.0%} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
