import math

import torch

from tsmoe.layers.input_rate import expert_moving_average


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
