import numpy as np

from tsmoe.analysis.interpret import SequenceExtras


def test_feature_importance_is_relative_to_uniform_over_observed_variables():
    mask = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 1]], dtype=float)
    uniform = mask / mask.sum(1, keepdims=True)  # equal weight among observed variables
    extras = SequenceExtras(times=[np.arange(3.0)], masks=[mask], extras={"feature_attention": [uniform]})
    np.testing.assert_allclose(extras.feature_importance(), [1, 1, 1, 1])  # alone or in company: 1

    favoured = np.array([[0.75, 0.25, 0, 0], [1.0, 0, 0, 0], [0.4, 0.2, 0.2, 0.2]])
    extras.extras["feature_attention"] = [favoured]
    importance = extras.feature_importance()
    np.testing.assert_allclose(importance[0], (1.5 + 1.0 + 1.6) / 3)
    assert importance[0] > 1 > importance[1]
