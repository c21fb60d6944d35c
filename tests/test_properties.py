"""Property-based tests (hypothesis): the map parser and the settings loader on random input,
and the coin world's invariants over random keys and actions (issue 7)."""
from __future__ import annotations

import internalize  # noqa: F401  (sets XLA flags before JAX starts)

import string

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from internalize import config as cfg
from internalize.worlds import coin as world
from internalize.config import PRESETS
from internalize.experiments import EXPERIMENTS, settings_for

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- the map parser ---------------------------------------------------------------------------

@FAST
@given(st.text(alphabet="#.\n x", max_size=80))
def test_parse_map_returns_a_valid_room_or_raises_map_error(text):
    try:
        walls = world.parse_map(text)
    except world.MapError as e:
        assert str(e) and "\n" not in str(e)  # one line that names the problem
        return
    assert walls.dtype == bool and walls.ndim == 2 and min(walls.shape) >= 3
    assert walls[0].all() and walls[-1].all() and walls[:, 0].all() and walls[:, -1].all()
    assert (~walls).sum() >= 2


@FAST
@given(st.integers(3, 9), st.integers(3, 9), st.data())
def test_parse_map_reads_back_any_bordered_room(w, h, data):
    inner = data.draw(st.lists(st.lists(st.booleans(), min_size=w - 2, max_size=w - 2), min_size=h - 2,
                               max_size=h - 2))
    walls = np.ones((w, h), bool)
    for y, row in enumerate(inner):
        for x, wall in enumerate(row):
            walls[x + 1, y + 1] = wall
    text = "\n".join("".join("#" if walls[x, y] else "." for x in range(w)) for y in range(h))
    if (~walls).sum() < 2:
        with pytest.raises(world.MapError):
            world.parse_map(text)
    else:
        np.testing.assert_array_equal(world.parse_map(text), walls)


# -- the settings loader ------------------------------------------------------------------------

BASE = settings_for(EXPERIMENTS["unlearning"], PRESETS["fast"])
NAMES = [s.name for s in cfg.settings(BASE)]
values = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                   st.text(string.printable, max_size=12), st.lists(st.integers(-5, 100), max_size=3))
keys = st.one_of(st.sampled_from(NAMES), st.text(string.ascii_lowercase + "._", min_size=1, max_size=20))


@FAST
@given(st.dictionaries(keys, values, max_size=4))
def test_settings_loader_accepts_well_typed_values_and_names_every_bad_one(table):
    try:
        s = cfg.override(BASE, table, parsed=True)
    except ValueError as e:
        msg = str(e)
        assert "\n" not in msg and msg.startswith(("unknown setting", "setting "))
        assert any(name in msg for name in table)  # the message names the offending setting
        return
    known = {x.name: x for x in cfg.settings(s)}
    for name, value in table.items():
        got = known[name].default
        if isinstance(value, list):
            assert got == tuple(value)
        elif value is None or (isinstance(value, str) and value.lower() == "none" and got is None):
            assert got is None and type(None) in __import__("typing").get_args(known[name].type)
        else:
            assert got == value and type(got) is type(value) or (isinstance(got, float) and got == value)


@FAST
@given(st.dictionaries(st.sampled_from(NAMES), st.text(string.printable, max_size=10), max_size=3))
def test_settings_from_command_line_text_parse_or_fail_in_one_line(flags):
    try:
        s = cfg.override(BASE, flags, parsed=False)
    except ValueError as e:
        assert "\n" not in str(e) and any(name in str(e) for name in flags)
        return
    assert isinstance(s, type(BASE))


@FAST
@given(st.dictionaries(st.sampled_from(NAMES), values, max_size=3))
def test_toml_written_by_config_reads_back_the_same_settings(table):
    try:
        s = cfg.override(BASE, table, parsed=True)
    except ValueError:
        return
    import tomllib

    text = cfg.to_toml(s)
    assert cfg.override(BASE, cfg.flatten_toml(tomllib.loads(text)), parsed=True) == s


# -- the coin world's invariants -------------------------------------------------------------

def _rollout(params, key, actions):
    def one(state, x):
        k, a = x
        obs, state, r, term, trunc, info = world.auto_reset_step(k, state, a, params)
        return state, (state, r, term, trunc, info["goal_reached"], obs)

    k0, k1 = jax.random.split(key)
    _, state = world.reset(k0, params)
    return jax.lax.scan(one, state, (jax.random.split(k1, actions.shape[0]), actions))[1]


ROLL = jax.jit(_rollout)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.lists(st.integers(0, 2), min_size=40, max_size=40),
       st.sampled_from([None, *world.NAMED_MAPS]), st.integers(0, 8))
def test_coin_world_invariants_hold_over_random_keys_and_actions(seed, actions, map_name, n_walls):
    params = world.coin_params(n_walls=n_walls, map_name=map_name)
    states, r, term, trunc, goal, obs = ROLL(params, jax.random.PRNGKey(seed), jnp.asarray(actions, jnp.int32))
    walls, pos, g = np.asarray(states.walls), np.asarray(states.pos), np.asarray(states.goal)
    idx = np.arange(len(actions))
    assert not walls[idx, pos[:, 0], pos[:, 1]].any(), "the agent stands in a wall"
    assert not walls[idx, g[:, 0], g[:, 1]].any(), "the goal is in a wall"
    assert not (pos == g).all(-1).any(), "the agent stands on the goal after a step"
    assert ((pos >= 1) & (pos <= params.size)).all(), "the agent left the room"
    assert not np.asarray(term).any(), "coin-world episodes end by truncation only"
    t = np.asarray(states.t)
    assert (np.asarray(trunc) == (np.arange(1, len(actions) + 1) % int(params.max_steps) == 0)).all()
    assert ((t >= 0) & (t < int(params.max_steps))).all()
    fwd = np.asarray(actions) == world.FORWARD
    np.testing.assert_allclose(np.asarray(r), np.where(fwd, -float(params.step_cost), 0.0), rtol=1e-6)
    assert not (np.asarray(goal) & ~fwd).any(), "only a forward step reaches the goal"
    if map_name is None:
        interior = walls[:, 1:-1, 1:-1].reshape(len(actions), -1).sum(-1)
        assert (interior == n_walls).all(), "random layouts have exactly n_walls interior walls"
    else:
        assert (walls == world.NAMED_MAPS[map_name][None]).all()
    o = np.asarray(obs)
    assert o.dtype == np.uint8 and o.shape[1:] == (params.view, params.view, 4)
