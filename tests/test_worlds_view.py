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
