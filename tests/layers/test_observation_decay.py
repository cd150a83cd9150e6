import math

import torch

from tsmoe.layers.observation_decay import ObservationDecay, last_observation


def test_last_observation_indices():
    mask = torch.tensor([[[1.0, 0.0], [0.0, 0.0], [1.0, 1.0], [0.0, 0.0]]])  # (B=1, T=4, F=2)
    at_or_before, before = last_observation(mask)
    assert at_or_before[0, :, 0].tolist() == [0, 0, 2, 2] and at_or_before[0, :, 1].tolist() == [-1, -1, 2, 2]
    assert before[0, :, 0].tolist() == [-1, 0, 0, 2] and before[0, :, 1].tolist() == [-1, -1, -1, 2]


def test_unobserved_values_decay_towards_the_mean_with_their_age():
    values = torch.tensor([[[2.0], [0.0], [0.0], [5.0]]])  # observed at steps 0 and 3 only
    mask = torch.tensor([[[1.0], [0.0], [0.0], [1.0]]])
    times = torch.tensor([[1.0, 2.0, 4.0, 7.0]])
    layer = ObservationDecay(1)
    with torch.no_grad():
        layer.w.fill_(0.5)
        layer.b.fill_(-0.25)
    x_hat, log_delta = layer(values, mask, times)
    # staleness: since the start (1 h) before the first observation, then since the previous observation
    torch.testing.assert_close(log_delta[0, :, 0], torch.log1p(torch.tensor([1.0, 1.0, 3.0, 6.0])))
    # observed steps keep their value; unobserved ones are 2 * exp(-relu(0.5 * age - 0.25))
    expected = [2.0, 2.0 * math.exp(-0.25), 2.0 * math.exp(-1.25), 5.0]
    torch.testing.assert_close(x_hat[0, :, 0], torch.tensor(expected))


def test_a_variable_never_observed_stays_at_the_mean_and_gradients_reach_the_rates():
    values, mask = torch.randn(2, 5, 3), torch.zeros(2, 5, 3)
    mask[:, 1, 0] = 1  # only variable 0 is ever observed
    layer = ObservationDecay(3)
    x_hat, log_delta = layer(values * mask, mask, torch.arange(5.0).expand(2, 5))
    assert torch.all(x_hat[..., 1:] == 0) and torch.isfinite(log_delta).all()
    x_hat.sum().backward()
    assert layer.w.grad[0] != 0 and torch.all(layer.w.grad[1:] == 0)
