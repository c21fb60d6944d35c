"""The networks of the learner and the ISR (internalize.networks)."""
from __future__ import annotations

import internalize  # noqa: F401  (sets the XLA flags before JAX starts; keep it first)


import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize import networks
from internalize.worlds import coin as world



# ---------------------------------------------------------------------------------------------
# Networks


def _kernels(params):
    """name -> kernel of every layer of a network's params."""
    return {name: np.asarray(layer["kernel"]) for name, layer in params["params"].items()}


OBS5 = np.asarray(jax.random.randint(jax.random.PRNGKey(0), (5, 9, 9, 4), 0, 11)).astype(np.uint8)


@pytest.fixture(scope="module")
def nets():
    """name -> (module, params), each initialized once (jitted) on a batch of 5 observations."""
    out = {}
    for name in ("paper_cnn", "mlp"):
        net = networks.actor_critic(name, 3, (64, 64), world.compact_features)
        out[name] = (net, jax.jit(net.init)(jax.random.PRNGKey(1), jnp.asarray(OBS5)))
    return out


@pytest.mark.parametrize("name", ["paper_cnn", "mlp"])
def test_actor_critic_shapes_and_sb3_init(nets, name):
    net, params = nets[name]
    assert isinstance(net, networks.PaperActorCritic if name == "paper_cnn" else networks.MLPActorCritic)
    logits, value = net.apply(params, jnp.asarray(OBS5))
    assert logits.shape == (5, 3) and value.shape == (5,)
    assert logits.dtype == jnp.float32 and value.dtype == jnp.float32

    kernels = _kernels(params)
    logit_k = [k for k in kernels.values() if k.shape == (64, 3)]
    value_k = [k for k in kernels.values() if k.shape == (64, 1)]
    assert len(logit_k) == 1 and len(value_k) == 1
    # Orthogonal with gain 0.01: all singular values 0.01 (a near-uniform initial policy).
    np.testing.assert_allclose(np.linalg.svd(logit_k[0], compute_uv=False), 0.01, rtol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(value_k[0]), 1.0, rtol=1e-3)  # gain 1
    assert np.abs(np.asarray(logits)).max() < 0.1
    # Every other layer: orthogonal with gain sqrt 2 (conv kernels as [4 C, F] matrices).
    for lname, k in kernels.items():
        if k.shape in ((64, 3), (64, 1)):
            continue
        m = k.reshape(-1, k.shape[-1])
        np.testing.assert_allclose(np.linalg.svd(m, compute_uv=False), np.sqrt(2), rtol=1e-3, err_msg=lname)
    for layer in params["params"].values():
        assert not np.asarray(layer["bias"]).any()


def test_paper_actor_critic_uses_conv2x2(nets):
    params = nets["paper_cnn"][1]
    convs = sorted(n for n in params["params"] if n.startswith("Conv2x2"))
    assert convs == ["Conv2x2_0", "Conv2x2_1", "Conv2x2_2"]
    shapes = [params["params"][n]["kernel"].shape for n in convs]
    assert shapes == [(2, 2, 4, 16), (2, 2, 16, 32), (2, 2, 32, 64)]


def test_actor_critic_unknown_network():
    with pytest.raises(ValueError):
        networks.actor_critic("transformer", 3, (64,))


def test_conv2x2_equals_flax_conv():
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 5, 6, 3))  # non-square: catches a transposed kernel
    conv = networks.Conv2x2(7)
    params = conv.init(jax.random.PRNGKey(1), x)
    params = jax.tree.map(lambda p: p + 0.1, params)  # non-zero bias too
    ref = nn.Conv(7, (2, 2), padding="VALID")
    y, y_ref = conv.apply(params, x), ref.apply(params, x)
    assert y.shape == y_ref.shape == (2, 4, 5, 7)
    np.testing.assert_allclose(np.asarray(y), np.asarray(y_ref), rtol=1e-4, atol=1e-5)
    # and without a batch axis
    np.testing.assert_allclose(np.asarray(conv.apply(params, x[0])), np.asarray(y_ref[0]), rtol=1e-4, atol=1e-5)


def test_compact_features():
    v = 9
    obs = np.zeros((v, v, 4), np.uint8)
    obs[..., 0] = world.OBJ_EMPTY
    walls = np.zeros((v, v), bool)
    for i, j in [(0, 0), (0, 8), (2, 3), (7, 1)]:
        obs[i, j, 0], obs[i, j, 1] = world.OBJ_WALL, world.COLOR_GREY
        walls[i, j] = True
    obs[6, 2, 0] = 0  # unseen (outside the room): neither wall nor goal
    obs[4, 4] = (world.OBJ_AGENT, world.COLOR_RED, 1, 0)  # the agent, state = direction 1
    obs[5, 7] = (world.OBJ_GOAL, world.COLOR_GREEN, 0, 1)
    goal = np.zeros((v, v), np.float32)
    goal[5, 7] = 1.0
    f = np.asarray(world.compact_features(jnp.asarray(obs)))
    assert f.shape == (2 * v * v,) and f.dtype == np.float32
    planes = f.reshape(v, v, 2)
    np.testing.assert_array_equal(planes[..., 0], walls.astype(np.float32))
    np.testing.assert_array_equal(planes[..., 1], goal)
    # batch dims are kept
    fb = world.compact_features(jnp.asarray(np.broadcast_to(obs, (2, 3, v, v, 4))))
    assert fb.shape == (2, 3, 2 * v * v)
    np.testing.assert_array_equal(np.asarray(fb[1, 2]), f)


