"""Small runs shared by the ensemble and distillation tests: a tiny LSTM on a folder of real stays."""

from tsmoe.estimator import Estimator

TINY_LSTM = {"hidden_size": 8, "head_hidden": 8}
FAST = {"max_epochs": 2, "batch_size": 32, "patience": 2}


def tiny_lstm(seed: int, root, split_file: str | None = None, **training) -> Estimator:
    """An unfitted LSTM estimator on the PhysioNet folder ``root``; ``split_file`` None draws a split by seed."""
    return Estimator(
        "lstm",
        "physionet2012",
        seed=seed,
        model_params=TINY_LSTM,
        data_params={"root": str(root), "split_file": split_file},
        training={**FAST, **training},
        trainer={"accelerator": "cpu"},
    )
