"""The categorical distribution (internalize.distributions)."""
from __future__ import annotations

import internalize  # noqa: F401  (sets the XLA flags before JAX starts; keep it first)


import jax
import jax.numpy as jnp
import numpy as np

from internalize.distributions import Categorical



def np_log_softmax(x):
    x = np.asarray(x, np.float64)
    z = x - x.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


# ---------------------------------------------------------------------------------------------
# Categorical


LOGITS = np.array([[0.5, -1.0, 2.0, 0.0], [3.0, 3.0, -2.0, 1.0], [0.0, 0.0, 0.0, 0.0]], np.float32)


def test_categorical_log_prob_and_entropy():
    dist = Categorical(jnp.asarray(LOGITS))
    actions = np.array([2, 1, 3])
    ref_lp = np_log_softmax(LOGITS)
    np.testing.assert_allclose(np.asarray(dist.log_prob(jnp.asarray(actions))), ref_lp[np.arange(3), actions],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(dist.log_probs), ref_lp, rtol=1e-5, atol=1e-6)
    probs = np.exp(ref_lp)
    np.testing.assert_allclose(np.asarray(dist.entropy()), -(probs * ref_lp).sum(-1), rtol=1e-5)
    assert np.isclose(float(dist.entropy()[2]), np.log(4), rtol=1e-6)  # uniform over 4
    np.testing.assert_array_equal(np.asarray(dist.mode()), [2, 0, 0])
    # log_prob broadcasts over batch dims
    lp2 = Categorical(jnp.asarray(LOGITS)[None].repeat(2, 0)).log_prob(jnp.asarray([[0, 1, 2], [3, 2, 1]]))
    np.testing.assert_allclose(np.asarray(lp2), ref_lp[np.arange(3), [[0, 1, 2], [3, 2, 1]]], rtol=1e-5,
                               atol=1e-6)


def test_categorical_sample_frequencies():
    logits = jnp.asarray(LOGITS[0])
    keys = jax.random.split(jax.random.PRNGKey(0), 20000)
    samples = np.asarray(jax.vmap(lambda k: Categorical(logits).sample(k))(keys))
    freq = np.bincount(samples, minlength=4) / len(samples)
    np.testing.assert_allclose(freq, np.exp(np_log_softmax(LOGITS[0])), atol=0.015)


