"""The worlds' egocentric views (coin, two-coin, prosocial) are the gather that defines them
(``coin._view_offsets``), bitwise, in every direction: ``coin.egocentric`` computes them by
crop and turn instead of by that gather."""
import internalize  # noqa: F401  (sets XLA flags before JAX starts)

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize.worlds import coin, prosocial, two_coin


def by_gather(grid, pos, direction, size):
    r = size - 1
    padded = jnp.pad(grid, ((r, r), (r, r), (0, 0)))
    ox, oy = coin._view_offsets(size)
    return padded[pos[0] + r + jnp.asarray(ox)[direction], pos[1] + r + jnp.asarray(oy)[direction]]


@pytest.mark.parametrize("name, module, params", [
    ("coin", coin, coin.coin_params(n_walls=5)),
    ("coin size 7", coin, coin.coin_params(n_walls=8, size=7)),
    ("two_coin", two_coin, coin.coin_params(n_walls=3)),
    ("prosocial", prosocial, prosocial.prosocial_params()),
])
def test_the_view_is_the_gather_that_defines_it(name, module, params):
    keys = jax.random.split(jax.random.PRNGKey(3), 64)
    _, states = jax.vmap(module.reset, in_axes=(0, None))(keys, params)
    size = params.size
    for d in range(4):
        turned = states.replace(dir=jnp.full_like(states.dir, d))
        got = jax.jit(jax.vmap(lambda s: coin.egocentric(module.encode_grid(s), s.pos, s.dir, size)))(turned)
        want = jax.jit(jax.vmap(lambda s: by_gather(module.encode_grid(s), s.pos, s.dir, size)))(turned)
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want), err_msg=f"{name}, direction {d}")


@pytest.mark.parametrize("params", [coin.coin_params(), coin.coin_params(map_name="plus"),
                                    coin.coin_params(n_walls=2, size=3), coin.coin_params(n_walls=10, size=9)],
                         ids=["paper", "plus", "size 3", "size 9"])
def test_the_coin_worlds_observation_cell_by_cell_is_the_crop(params):
    """coin.observe (each view cell computed from position, facing and wall bit masks) is
    observe_by_crop bitwise, for agents anywhere in the room (border and corners too) facing
    every way; observe_packed holds the same bytes."""
    keys = jax.random.split(jax.random.PRNGKey(5), 512)
    _, states = jax.vmap(coin.reset, in_axes=(0, None))(keys, params)
    k_pos, k_dir = jax.random.split(jax.random.PRNGKey(6))
    states = states.replace(pos=jax.random.randint(k_pos, (512, 2), 0, params.width),
                            dir=jax.random.randint(k_dir, (512,), 0, 4))
    want = np.asarray(jax.jit(jax.vmap(coin.observe_by_crop, in_axes=(0, None)))(states, params))
    got = np.asarray(jax.jit(jax.vmap(coin.observe, in_axes=(0, None)))(states, params))
    packed = np.asarray(jax.jit(jax.vmap(coin.observe_packed, in_axes=(0, None)))(states, params))
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(packed.astype("<u4").view(np.uint8).reshape(want.shape), want)
    assert want[..., 1].max() > 0 and (want == 0).all(-1).any()  # walls, goals and outside cells were seen
