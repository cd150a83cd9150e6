"""What packing costs PyTorch's CPU LSTM and GRU: forward and backward of one batch of equal-length
sequences, packed (``pack_padded_sequence``) against the padded tensor itself, one thread.

    OMP_NUM_THREADS=1 python benchmarks/rnn_packing.py

The batch is P4's: 32 ETTh1 windows x 7 channels read independently (224 sequences of 96 steps, one
value, its mask and log(1 + dt) per step), hidden size 64. Windows have no padding, so tsmoe's LSTM and GRU
skip packing there (``tsmoe.models.lstm``); a test checks both paths give the same outputs.
"""

from __future__ import annotations

import torch
from timing import median_seconds
from torch.nn.utils.rnn import pack_padded_sequence


def step(rnn: torch.nn.RNNBase, x: torch.Tensor, packed: bool) -> None:
    lengths = torch.full((x.shape[0],), x.shape[1])
    inputs = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False) if packed else x
    _, hidden = rnn(inputs)
    (hidden[0] if isinstance(hidden, tuple) else hidden).sum().backward()


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x = torch.randn(224, 96, 3)
    print("| network | packed (s) | unpacked (s) | packed / unpacked |")
    print("|---|---|---|---|")
    for cls in (torch.nn.GRU, torch.nn.LSTM):
        rnn = cls(3, 64, batch_first=True)
        packed = median_seconds(lambda rnn=rnn: step(rnn, x, True), repeats=7)
        plain = median_seconds(lambda rnn=rnn: step(rnn, x, False), repeats=7)
        print(f"| {cls.__name__} | {packed:.3f} | {plain:.3f} | {packed / plain:.1f}x |")


if __name__ == "__main__":
    main()
