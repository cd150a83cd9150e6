import math

import torch

from tsmoe.layers.input_rate import expert_moving_average, expert_stride_schedule
from tsmoe.layers.liquid import CfCCell, LiquidExperts


def test_moving_average_follows_the_clock_and_holds_between_observations():
    values = torch.tensor([[[1.0], [0.0], [3.0]]])  # (B=1, T=3, F=1)
    mask = torch.tensor([[[1.0], [0.0], [1.0]]])  # the middle step does not observe the variable
    times = torch.tensor([[0.0, 1.0, 2.0]])
    tau = torch.tensor([0.01, 2.0])  # a very fast and a slow expert
    out = expert_moving_average(values, mask, times, tau)
    assert out.shape == (1, 3, 2, 1)
    torch.testing.assert_close(out[0, 0, :, 0], torch.tensor([1.0, 1.0]))  # the first observation sets it
    torch.testing.assert_close(out[0, 1], out[0, 0])  # held while unobserved (the 0 is not a value)
    slow = 1.0 + (1 - math.exp(-2.0 / 2.0)) * (3.0 - 1.0)  # the gap is 2 h since the last observation
    torch.testing.assert_close(out[0, 2, :, 0], torch.tensor([3.0, slow]), rtol=1e-5, atol=1e-5)


def test_never_observed_stays_zero():
    out = expert_moving_average(
        torch.randn(2, 4, 3), torch.zeros(2, 4, 3), torch.arange(4.0).expand(2, 4), torch.ones(2)
    )
    assert torch.all(out == 0)


def test_stride_schedule_reads_every_kth_step_and_the_last_and_sums_the_skipped_time():
    step_mask = torch.tensor([[1.0] * 7, [1.0] * 5 + [0.0] * 2])  # lengths 7 and 5
    dt = torch.tensor([[0.5, 1, 2, 1, 1, 3, 1], [1, 1, 1, 1, 1, 9, 9]])
    update, elapsed = expert_stride_schedule(step_mask, dt, torch.tensor([1, 3]))
    assert update.shape == elapsed.shape == (7, 2, 2)
    assert update[:, 0, 0].all() and update[:, 0, 1].tolist() == [True] * 5 + [False] * 2  # stride 1
    assert update[:, 1, 0].tolist() == [False, False, True, False, False, True, True]  # steps 3, 6 and the last
    assert update[:, 1, 1].tolist() == [False, False, True, False, True, False, False]  # ... its last is step 5
    torch.testing.assert_close(elapsed[:, 0, 0], dt[0])  # stride 1: its own gap
    assert elapsed[2, 1, 0] == 3.5 and elapsed[5, 1, 0] == 5 and elapsed[6, 1, 0] == 1  # time since its last read
    assert elapsed[2, 1, 1] == 3 and elapsed[4, 1, 1] == 2


def test_a_strided_expert_equals_one_expert_fed_only_its_own_steps():
    torch.manual_seed(0)
    experts = LiquidExperts(CfCCell(3, 4, experts=2, backbone_units=6), torch.tensor([1.0, 4.0]), strides=[1, 3])
    alone = LiquidExperts(CfCCell(3, 4, experts=1, backbone_units=6), torch.tensor([4.0]))
    with torch.no_grad():
        for name, param in alone.cell.named_parameters():
            param.copy_(dict(experts.cell.named_parameters())[name][1:2])  # expert 1's weights
    u, dt = torch.randn(1, 8, 3), torch.rand(1, 8) + 0.2
    states, _ = experts(u, dt, torch.ones(1, 8))
    reads = [2, 5, 7]  # every 3rd step, and the last
    clock = torch.cumsum(dt, 1)[0, reads]
    gaps = torch.diff(clock, prepend=torch.zeros(1)).unsqueeze(0)
    expected, _ = alone(u[:, reads], gaps, torch.ones(1, 3))
    torch.testing.assert_close(states[0, reads, 1], expected[0, :, 0], rtol=0, atol=1e-6)
    torch.testing.assert_close(states[0, 3:5, 1], states[0, 2:3, 1].expand(2, -1))  # held between reads
    assert torch.all(states[0, :2, 1] == 0)  # nothing read yet: the initial state
