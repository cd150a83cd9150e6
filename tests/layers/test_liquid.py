"""Liquid cells: numerically equal to ncps (the oracle, a test-only dependency), fused experts equal to
separate ones, irregular time per sample, padding that does not leak."""

import ncps.torch as ncps_torch  # the oracle (a dev dependency): these tests must run, never skip
import pytest
import torch
from ncps.wirings import FullyConnected

from tsmoe.layers.cfc_scan import CfCScan
from tsmoe.layers.liquid import CfCCell, CTRNNCell, LiquidCell, LiquidExperts, LTCCell

F, H, B = 5, 7, 4


def copy_cfc_from_ncps(ours: CfCCell, theirs) -> None:
    backbone = theirs.backbone[0]
    with torch.no_grad():
        ours.backbone_input_weight[0].copy_(backbone.weight.T[:F])
        ours.backbone_state_weight[0].copy_(backbone.weight.T[F:])
        ours.backbone_bias[0].copy_(backbone.bias)
        heads = [theirs.ff1] if ours.mode == "pure" else [theirs.ff1, theirs.ff2, theirs.time_a, theirs.time_b]
        ours.head_weight[0].copy_(torch.cat([h.weight.T for h in heads], dim=1))
        ours.head_bias[0].copy_(torch.cat([h.bias for h in heads]))
        if ours.mode == "pure":
            ours.w_tau[0].copy_(theirs.w_tau[0] + 0.3)
            theirs.w_tau.data += 0.3  # non-zero, so the test sees it
            ours.A[0].copy_(theirs.A[0])


@pytest.mark.parametrize("mode", ["default", "no_gate", "pure"])
def test_cfc_matches_ncps_over_an_irregular_sequence(mode):
    torch.manual_seed(0)
    theirs = ncps_torch.CfCCell(F, H, mode=mode, backbone_units=16, backbone_layers=1)
    ours = CfCCell(F, H, experts=1, mode=mode, backbone_units=16)
    copy_cfc_from_ncps(ours, theirs)
    u = torch.randn(B, 6, F)
    dt = torch.rand(B, 6) * 3  # a different elapsed time for every sample and step
    h_theirs, h_ours = torch.zeros(B, H), torch.zeros(B, 1, H)
    for t in range(6):
        h_theirs, _ = theirs(u[:, t], h_theirs, dt[:, t : t + 1])
        h_ours = ours(u[:, t], h_ours, dt[:, t], torch.ones(1))
        torch.testing.assert_close(h_ours[:, 0], h_theirs, rtol=0, atol=1e-5)


def test_ltc_matches_ncps_over_an_irregular_sequence():
    torch.manual_seed(0)
    theirs = ncps_torch.LTCCell(FullyConnected(H), in_features=F, implicit_param_constraints=True, ode_unfolds=6)
    assert torch.all(theirs.sparsity_mask == 1) and torch.all(theirs.sensory_sparsity_mask == 1)
    ours = LTCCell(F, H, experts=1, ode_unfolds=6)
    with torch.no_grad():
        for name in ("gleak", "vleak", "cm", "sigma", "mu", "w", "erev", "sensory_sigma", "sensory_mu", "sensory_w",
                     "sensory_erev", "input_w", "input_b"):  # fmt: skip
            getattr(ours, name)[0].copy_(getattr(theirs, name))
    u = torch.randn(B, 5, F)
    dt = torch.rand(B, 5) * 2 + 0.1
    h_theirs, h_ours = torch.zeros(B, H), torch.zeros(B, 1, H)
    for t in range(5):
        # ncps's affine output map is not part of the cell here: MR-MoE reads the states through its own readout
        _, h_theirs = theirs(u[:, t], h_theirs, dt[:, t : t + 1])
        h_ours = ours(u[:, t], h_ours, dt[:, t], torch.ones(1))
        torch.testing.assert_close(h_ours[:, 0], h_theirs, rtol=0, atol=1e-5)


@pytest.mark.parametrize("cell_type", [CfCCell, LTCCell, CTRNNCell])
def test_fused_experts_equal_separate_single_experts(cell_type):
    torch.manual_seed(1)
    fused = cell_type(F, H, experts=3)
    singles = [cell_type(F, H, experts=1) for _ in range(3)]
    with torch.no_grad():
        for k, single in enumerate(singles):
            for p_single, p_fused in zip(single.parameters(), fused.parameters(), strict=True):
                p_single.copy_(p_fused[k : k + 1])
    tau = torch.tensor([0.5, 2.0, 8.0])
    u, h, dt = torch.randn(B, F), torch.randn(B, 3, H) * 0.1, torch.rand(B) * 2
    together = fused(u, h, dt, tau)
    for k, single in enumerate(singles):
        alone = single(u, h[:, k : k + 1], dt, tau[k : k + 1])
        torch.testing.assert_close(together[:, k : k + 1], alone, rtol=1e-5, atol=1e-6)


def test_time_constant_sets_the_speed_of_the_ctrnn():
    cell = CTRNNCell(F, H, experts=2, integrator="euler")
    with torch.no_grad():  # two identical experts that differ only in their time constant
        cell.input_weight[1].copy_(cell.input_weight[0])
        cell.state_weight[1].copy_(cell.state_weight[0])
        cell.bias[1].copy_(cell.bias[0])
    u, h, dt = torch.randn(B, F), torch.zeros(B, 2, H), torch.full((B,), 0.1)
    step = cell(u, h, dt, torch.tensor([0.1, 10.0]))
    # over one gap of 0.1 the fast expert (tau 0.1) moves 100 times as far as the slow one (tau 10)
    torch.testing.assert_close(step[:, 0], 100 * step[:, 1], rtol=1e-4, atol=1e-6)


def test_exponential_integrator_is_stable_for_long_gaps():
    cell = CTRNNCell(F, H, experts=1, integrator="exponential")
    h = torch.zeros(B, 1, H)
    for _ in range(20):
        h = cell(torch.randn(B, F), h, torch.full((B,), 50.0), torch.ones(1))
    assert torch.all(h.abs() <= 1.0)  # bounded by tanh; a plain Euler step of 50 would blow up


@pytest.mark.parametrize("cell_type", [CfCCell, LTCCell, CTRNNCell])
def test_padding_holds_the_state(cell_type):
    torch.manual_seed(2)
    experts = LiquidExperts(cell_type(F, H, experts=2), tau=torch.tensor([1.0, 4.0]))
    u, dt = torch.randn(2, 6, F), torch.rand(2, 6)
    mask = torch.ones(2, 6)
    mask[1, 3:] = 0  # the second sequence is 3 steps long
    _, last = experts(u, dt, mask)
    _, alone = experts(u[1:, :3], dt[1:, :3], torch.ones(1, 3))
    torch.testing.assert_close(last[1:], alone)


def test_learnable_tau_stays_in_its_band():
    experts = LiquidExperts(CfCCell(F, H, experts=3), tau=torch.tensor([1.0, 4.0, 16.0]), learnable_tau=True, band=2.0)
    with torch.no_grad():
        experts.tau_logit.copy_(torch.tensor([100.0, -100.0, 0.0]))
    torch.testing.assert_close(experts.tau, torch.tensor([2.0, 2.0, 16.0]))


@pytest.mark.parametrize("mode", ["default", "no_gate"])
def test_cfc_sequence_scan_matches_ncps(mode):
    """The whole-sequence scan (hand-written backward, tanh by sigmoid) gives ncps's numbers too."""
    torch.manual_seed(1)
    theirs = ncps_torch.CfCCell(F, H, mode=mode, backbone_units=16, backbone_layers=1)
    experts = LiquidExperts(CfCCell(F, H, experts=1, mode=mode, backbone_units=16), torch.ones(1))
    copy_cfc_from_ncps(experts.cell, theirs)
    u, dt = torch.randn(B, 9, F), torch.rand(B, 9) * 3
    states, _ = experts(u, dt, torch.ones(B, 9))
    h = torch.zeros(B, H)
    for t in range(9):
        h, _ = theirs(u[:, t], h, dt[:, t : t + 1])
        torch.testing.assert_close(states[:, t, 0], h, rtol=0, atol=1e-5)


@pytest.mark.parametrize("mode", ["default", "no_gate"])
@pytest.mark.parametrize("padded", [True, False])
def test_cfc_scan_values_and_gradients_equal_the_autograd_loop(mode, padded):
    """Every gradient of the hand-written backward (input share, initial state, learnable time constants,
    all weights) equals autograd's through the step-by-step loop, with and without padded steps."""
    torch.manual_seed(2)
    cell = CfCCell(F, H, experts=3, mode=mode, backbone_units=6).double()
    u = torch.randn(B, 8, F, dtype=torch.double)
    h0 = torch.randn(3, B, H, dtype=torch.double, requires_grad=True)
    dt = torch.rand(8, B, dtype=torch.double) * 3
    tau = torch.tensor([0.5, 2.0, 8.0], dtype=torch.double, requires_grad=True)
    keep = (torch.rand(8, 1, B, 1) > (0.3 if padded else -1)).double()
    assert padded == bool((keep == 0).any())
    projected = cell.project_input(u).detach().requires_grad_()
    weight = torch.randn(8, 3, B, H, dtype=torch.double)  # a loss that weighs every state differently
    wrt = [projected, h0, tau, cell.backbone_state_weight, cell.head_weight, cell.head_bias]  # the input
    # weights reach the states only through `projected`, whose gradient is compared
    results = []
    for scan in (cell.scan, lambda *args: LiquidCell.scan(cell, *args)):
        states = scan(projected, h0, dt, tau, keep)
        results.append((states, torch.autograd.grad((states * weight).sum(), wrt)))
    (fast, fast_grads), (loop, loop_grads) = results
    torch.testing.assert_close(fast, loop, rtol=0, atol=1e-12)
    for a, b in zip(fast_grads, loop_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_cfc_scan_passes_gradcheck():
    torch.manual_seed(3)
    k, b, t, hidden, units = 2, 3, 4, 3, 5
    inputs = (
        torch.randn(t, k, b, units, dtype=torch.double, requires_grad=True),  # projected
        torch.randn(k, b, hidden, dtype=torch.double, requires_grad=True),  # h0
        torch.rand(t, k, b, 1, dtype=torch.double, requires_grad=True),  # dt / tau
        torch.tensor([1.0, 0.0, 1.0, 1.0]).double().reshape(t, 1, 1, 1).expand(t, 1, b, 1).contiguous(),  # keep
        torch.randn(k, hidden, units, dtype=torch.double, requires_grad=True),
        torch.randn(k, units, 4 * hidden, dtype=torch.double, requires_grad=True),
        torch.randn(k, 4 * hidden, dtype=torch.double, requires_grad=True),
    )
    for no_gate in (False, True):
        assert torch.autograd.gradcheck(lambda *x, n=no_gate: CfCScan.apply(*x, n), inputs)
