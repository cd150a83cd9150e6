"""Temporal attention one step at a time, from the states kept in a StateMemory, gives what the whole
sequence's attention gives, for a batch of sequences of different lengths held in different buckets;
and the memory holds each sequence in a bucket of its own length's size, not the longest one's."""

from __future__ import annotations

import pytest
import torch

from tsmoe.layers.attention import TemporalAttention
from tsmoe.layers.state_memory import FIRST_CAPACITY, StateMemory


def written(memory: StateMemory, slots: torch.Tensor, sequences: list[torch.Tensor]) -> None:
    """Each sequence's states but its last into its slot, a step at a time (as a stream writes them)."""
    for place in range(max(len(sequence) for sequence in sequences) - 1):
        going = [b for b, sequence in enumerate(sequences) if place < len(sequence) - 1]
        if going:
            new = torch.stack([sequences[b][place] for b in going])
            memory.write(slots[going], torch.full((len(going),), place), new)


@pytest.mark.parametrize("rows", ["consecutive", "scattered"])
def test_steps_from_the_memory_equal_attention_over_each_whole_sequence(rows):
    torch.manual_seed(0)
    width, batch = 64, 20
    attention = TemporalAttention(width).eval()
    lengths = torch.randint(1, 1200, (batch,))  # from 1 to 1,199 states: buckets of 16 to 2,048 places
    lengths[:4] = torch.tensor([1, 16, 17, 33])  # at the edges of buckets
    sequences = [torch.randn(int(n), width) for n in lengths]
    # consecutive rows are read as views of a bucket; rows in no order, some left empty, as copies
    slots = torch.arange(batch) if rows == "consecutive" else torch.randperm(batch + 3)[:batch]
    memory = StateMemory(batch + 3, width)
    with torch.no_grad():
        written(memory, slots, sequences)
        newest = torch.stack([sequence[-1] for sequence in sequences])
        context = attention.step(newest, memory, slots, lengths - 1)
        for b, sequence in enumerate(sequences):
            whole, _ = attention(sequence[None], torch.ones(1, len(sequence)), sequence[-1:])
            torch.testing.assert_close(context[b], whole[0], atol=1e-5, rtol=1e-5)
        for members, states in memory.read(slots, lengths):  # every state kept where it was written
            for b, kept in zip(torch.arange(batch)[members], states, strict=True):
                torch.testing.assert_close(kept[: lengths[b]], sequences[b])


def test_a_long_sequence_does_not_make_the_short_ones_hold_its_length():
    width, short = 8, 100
    memory = StateMemory(short + 1, width)
    sequences = [torch.randn(5000, width)] + [torch.randn(10, width) for _ in range(short)]
    written(memory, torch.arange(short + 1), sequences)
    # the long one alone in a bucket of 8,192 places (the smaller ones it passed through dropped), the
    # short ones in the first bucket: not 101 rows of 8,192
    assert memory.floats() == (8192 + (short + 1) * FIRST_CAPACITY) * width
    memory.reset(0)  # a new sequence in the long one's slot: back to the first bucket, the big one dropped
    assert memory.floats() == (short + 1) * FIRST_CAPACITY * width
