"""Flushing subnormal floats to zero (on by default: ``training.flush_subnormals``) changes no output or
gradient beyond float32 rounding, on real stays."""

from __future__ import annotations

import pytest
import torch

from tsmoe.config import load_config
from tsmoe.data.irregular import IrregularDataset, IrregularNormalizer, collate_irregular
from tsmoe.data.sources.physionet2012 import load_physionet2012
from tsmoe.models.output import unpack
from tsmoe.models.registry import build_model
from tsmoe.training.numerics import flushed_subnormals


def test_mrmoe_outputs_and_gradients_agree_with_and_without_flushing_on_real_stays(small_physionet):
    data = load_physionet2012(small_physionet)
    dataset = IrregularDataset(data, IrregularNormalizer.fit(data))
    batch = collate_irregular([dataset[i] for i in range(48)])  # real stays, up to hundreds of steps
    torch.manual_seed(0)
    model = build_model(load_config("configs/mrmoe-physionet2012.yaml").model,
                        {"n_features": 37, "n_static": 5, "n_classes": 2}, "binary", "irregular").eval()  # fmt: skip
    results = []
    for flush in (False, True):
        model.zero_grad()
        with flushed_subnormals(flush):
            output = unpack(model(batch))[0]
            output.sum().backward()
        results.append((output.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]))
    (kept, kept_grads), (flushed, flushed_grads) = results
    torch.testing.assert_close(flushed, kept, rtol=1e-5, atol=1e-6)
    for a, b in zip(flushed_grads, kept_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_flushing_is_on_only_inside_the_block():
    if not torch.set_flush_denormal(False):  # True where the CPU can flush (x86 with SSE3)
        pytest.skip("this CPU cannot flush subnormal floats to zero")
    tiny = torch.tensor(1e-40)  # a subnormal float32
    with flushed_subnormals():
        assert float(tiny * 1.0) == 0.0
    assert float(tiny * 1.0) > 0.0
    with flushed_subnormals(False):
        assert float(tiny * 1.0) > 0.0
