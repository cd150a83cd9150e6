"""Where temporal attention keeps the states of many sequences that advance one step at a time.

:meth:`tsmoe.layers.attention.TemporalAttention.step` reads, for each sequence, every mixed state it has
had. Sequences grow at their own pace (a stay of 6 hours beside one of 6 weeks), so one padded tensor
would cost every sequence the longest one's length. Instead a sequence's states are a row of a *bucket*,
a tensor ``(rows, capacity, D)`` shared by the sequences of that capacity (powers of two from 16): a
sequence that outgrows its bucket moves to one of at least twice the capacity (its states copied,
O(1) per step on the average), so each holds at most twice its own steps. Sequences in one bucket are
read as one batch, and as a view where their rows are consecutive (a stream whose entities advance
together).
"""

from __future__ import annotations

import numpy as np
import torch

FIRST_CAPACITY = 16


class StateMemory:
    """The states of sequences (slots) ``0..S-1``: sequence ``s`` is row ``row[s]`` of the bucket of
    capacity ``capacity[s]``. Places past a sequence's length hold zeros or an earlier sequence's states
    (finite either way); the reader masks them."""

    def __init__(self, slots: int, width: int) -> None:
        self.width = width
        self.buckets: dict[int, torch.Tensor] = {}  # capacity -> (rows, capacity, D)
        self.used: dict[int, int] = {}  # rows of each bucket handed out so far (the rest are spare)
        self.free: dict[int, list[int]] = {}  # rows handed back
        self.capacity = np.full(slots, FIRST_CAPACITY, dtype=np.int64)
        self.row = self._take(FIRST_CAPACITY, slots)

    def __len__(self) -> int:
        return len(self.capacity)

    def floats(self) -> int:
        """The floats held, spare rows included."""
        return sum(bucket.numel() for bucket in self.buckets.values())

    def grow_slots(self, slots: int) -> None:
        """At least ``slots`` sequences (the new ones empty)."""
        added = slots - len(self)
        if added > 0:
            self.capacity = np.concatenate([self.capacity, np.full(added, FIRST_CAPACITY, dtype=np.int64)])
            self.row = np.concatenate([self.row, self._take(FIRST_CAPACITY, added)])

    def reset(self, slot: int) -> None:
        """Sequence ``slot`` starts again (a new entity in a freed slot): back to the smallest bucket."""
        if self.capacity[slot] > FIRST_CAPACITY:
            self._give_back(int(self.capacity[slot]), [int(self.row[slot])])
            self.capacity[slot], self.row[slot] = FIRST_CAPACITY, self._take(FIRST_CAPACITY, 1)[0]

    def write(self, slots: torch.Tensor, places: torch.Tensor, new: torch.Tensor) -> None:
        """``new (B, D)`` as the states of sequences ``slots (B,)`` at ``places (B,)`` (overwriting a step
        being redone); a sequence whose place is past its bucket's capacity moves first."""
        slots_np, places_np = slots.numpy(), places.numpy()
        outgrown = places_np >= self.capacity[slots_np]
        if outgrown.any():
            self._move(slots_np[outgrown], places_np[outgrown] + 1)
        for capacity, members in self._groups(slots_np):
            rows = torch.from_numpy(self.row[slots_np[members]])
            self.buckets[capacity][rows, places[_torch(members)]] = new[_torch(members)]

    def read(self, slots: torch.Tensor, counts: torch.Tensor) -> list[tuple[slice | torch.Tensor, torch.Tensor]]:
        """The first ``counts[b]`` states of sequences ``slots (B,)``, a group per bucket: ``(members,
        states (b, n, D))``, ``members`` which of the ``B`` (a slice when all), ``n`` the group's largest
        count (shorter sequences padded)."""
        slots_np = slots.numpy()
        groups = []
        for capacity, members in self._groups(slots_np):
            rows = self.row[slots_np[members]]
            n = int(counts[_torch(members)].max())
            bucket = self.buckets[capacity]
            if bool((np.diff(rows) == 1).all()):
                states = bucket[int(rows[0]) : int(rows[0]) + len(rows), :n]  # consecutive rows: a view
            else:
                states = bucket[torch.from_numpy(rows), :n]
            groups.append((_torch(members), states))
        return groups

    # ---- buckets ----------------------------------------------------------------------------------------

    def _groups(self, slots: np.ndarray) -> list[tuple[int, slice | np.ndarray]]:
        """``(capacity, members)`` for each bucket holding some of ``slots``: which of them (all: a slice)."""
        capacities = self.capacity[slots]
        if (capacities == capacities[0]).all():
            return [(int(capacities[0]), slice(None))]
        return [(int(c), np.flatnonzero(capacities == c)) for c in np.unique(capacities)]

    def _take(self, capacity: int, count: int) -> np.ndarray:
        """``count`` rows of the bucket of ``capacity``: handed-back ones first, then new ones (the bucket's
        rows double when it is full)."""
        free = self.free.setdefault(capacity, [])
        reused = [free.pop() for _ in range(min(count, len(free)))]
        fresh = count - len(reused)
        used = self.used.get(capacity, 0)
        bucket = self.buckets.get(capacity)
        have = 0 if bucket is None else len(bucket)
        if used + fresh > have:
            extra = torch.zeros(max(2 * have, used + fresh) - have, capacity, self.width)
            self.buckets[capacity] = extra if bucket is None else torch.cat([bucket, extra])
        self.used[capacity] = used + fresh
        return np.array(reused + list(range(used, used + fresh)), dtype=np.int64)

    def _give_back(self, capacity: int, rows: list[int]) -> None:
        """Rows of a bucket no longer used; a bucket with none in use is dropped."""
        self.free[capacity].extend(rows)
        if len(self.free[capacity]) == self.used[capacity]:
            del self.buckets[capacity], self.free[capacity], self.used[capacity]

    def _move(self, slots: np.ndarray, needed: np.ndarray) -> None:
        """Sequences ``slots`` into buckets of at least ``needed`` places and twice their capacity, their
        states copied."""
        old = self.capacity[slots]
        target = np.maximum(2 * old, 2 ** np.ceil(np.log2(needed)).astype(np.int64))
        for capacity in np.unique(old):
            for grown in np.unique(target[old == capacity]):
                group = slots[(old == capacity) & (target == grown)]
                rows = self._take(int(grown), len(group))
                source = self.buckets[int(capacity)][torch.from_numpy(self.row[group])]
                self.buckets[int(grown)][torch.from_numpy(rows), : int(capacity)] = source
                self._give_back(int(capacity), self.row[group].tolist())
                self.capacity[group], self.row[group] = grown, rows


def _torch(members: slice | np.ndarray) -> slice | torch.Tensor:
    """Members of a group as an index of tensors."""
    return members if isinstance(members, slice) else torch.from_numpy(members)
