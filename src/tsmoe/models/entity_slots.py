"""The states of a stream's entities, one row (slot) each, for :class:`tsmoe.stream.StreamingPredictor`.

An update batch then gathers its entities' rows, takes one model step and scatters the new rows back:
a handful of tensor operations whatever the number of entities, where a list of per-entity states would
cost a loop over them. Each entity has two rows:

- ``before``: the state before its latest step, from which that step is redone when another update
  arrives at the same time;
- ``after``: the state after it, which becomes ``before`` when a later step arrives.

Temporal attention's mixed states live in the model's :class:`tsmoe.layers.state_memory.StateMemory`,
shared by both, slot by slot. Rows of closed entities are reused; the rows double when all are taken.
"""

from __future__ import annotations

import torch

from tsmoe.models.mrmoe import MRMoE


class EntitySlots:
    """Rows of ``before`` and ``after`` states (:class:`tsmoe.models.mrmoe.StepState`), and each entity's
    scaled static descriptors ``static, static_mask (S, P)``."""

    def __init__(self, model: MRMoE, n_static: int) -> None:
        self.model = model
        self.fresh = model.start_state(1)  # refuses the options that read ahead of a step
        self.before = model.start_state(0)
        self.after = self.before.with_rows([row.clone() for row in self.before.rows()], self.before.slots)
        self.static = torch.zeros(0, n_static)
        self.static_mask = torch.zeros(0, n_static)
        self.free_slots: list[int] = []

    def __len__(self) -> int:
        """The rows held (open entities and free rows)."""
        return len(self.before.slots)

    def take(self, static: torch.Tensor, static_mask: torch.Tensor) -> int:
        """A row for a new entity with static descriptors ``static, static_mask (1, P)``, its state that
        of a sequence that has seen nothing."""
        if not self.free_slots:
            self._grow(max(16, 2 * len(self)))
        slot = self.free_slots.pop()
        self.before.put(slice(slot, slot + 1), self.fresh)
        if self.before.memory is not None:
            self.before.memory.reset(slot)
        self.static[slot], self.static_mask[slot] = static[0], static_mask[0]
        return slot

    def free(self, slot: int) -> None:
        """Give a closed entity's row back (it is reset when taken again)."""
        self.free_slots.append(slot)

    def _grow(self, rows: int) -> None:
        """Hold ``rows`` rows; the new ones are free, lowest first. The old rows and what the memory holds
        for them are kept."""
        have = len(self)
        added = self.model.start_state(rows - have).rows()
        slots = torch.arange(rows)
        if self.before.memory is not None:
            self.before.memory.grow_slots(rows)
        self.before = self.before.with_rows(_appended(self.before.rows(), added), slots)
        self.after = self.after.with_rows(_appended(self.after.rows(), added), slots)
        width = self.static.shape[1]
        self.static = torch.cat([self.static, torch.zeros(rows - have, width)])
        self.static_mask = torch.cat([self.static_mask, torch.zeros(rows - have, width)])
        self.free_slots = list(range(rows - 1, have - 1, -1)) + self.free_slots


def _appended(rows: list[torch.Tensor], added: list[torch.Tensor]) -> list[torch.Tensor]:
    """Each of ``rows`` with the matching ``added`` rows after it."""
    return [torch.cat([old, new]) for old, new in zip(rows, added, strict=True)]
