"""Tests of the caregiver's presence and the learner's utility (internalize.presence, SPEC 2)."""
from __future__ import annotations

import internalize  # noqa: F401  (sets the XLA flags before JAX starts; keep it first)

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize import presence

COST = -0.9 / 20  # R_e of a forward step (SPEC 3)
R_S = 0.4


def U(r_e, r_s, r_i, p, waive):
    return float(presence.utility(jnp.float32(r_e), jnp.float32(r_s), jnp.float32(r_i), jnp.float32(p),
                                  jnp.bool_(waive)))


# ---------------------------------------------------------------------------------------------
# utility


def test_utility_present_goal_step_waives_cost():
    assert U(COST, R_S, 0.3, 1.0, True) == pytest.approx(0.4, abs=1e-7)  # R_i ignored when present


def test_utility_present_goal_step_without_waiver():
    assert U(COST, R_S, 0.0, 1.0, False) == pytest.approx(0.4 - 0.045, abs=1e-7)


def test_utility_present_plain_forward_step():
    assert U(COST, 0.0, 0.3, 1.0, False) == pytest.approx(-0.045, abs=1e-7)
    assert U(0.0, 0.0, 0.3, 1.0, False) == 0.0  # a turn costs nothing


def test_utility_isr_replacing_the_whole_reward_drops_the_step_cost_only_while_absent():
    """SPEC 8: in the prosocial world the ISR's output replaces the learner's reward entirely."""
    def u(r_e, r_s, r_i, p, replace):
        return float(presence.utility(jnp.float32(r_e), jnp.float32(r_s), jnp.float32(r_i), jnp.float32(p),
                                      jnp.bool_(False), replace=jnp.float32(replace)))

    cost = -0.009
    assert u(cost, 0.0, 0.25, 0.0, 1.0) == pytest.approx(0.25, abs=1e-7)  # absent: R_i alone
    assert u(cost, 0.0, 0.25, 0.0, 0.0) == pytest.approx(0.25 + cost, abs=1e-7)  # SPEC 5: R_e stays
    assert u(cost, R_S, 0.25, 1.0, 1.0) == pytest.approx(R_S + cost, abs=1e-7)  # present: unchanged
    # Expected presence blends the two worlds linearly.
    assert u(cost, R_S, 0.25, 0.5, 1.0) == pytest.approx(0.5 * (R_S + cost) + 0.5 * 0.25, abs=1e-7)


def test_utility_absent_uses_internal_reward():
    # the caregiver's R_s and its waiver are gone; the ISR's R_i stands in
    assert U(COST, R_S, 0.3, 0.0, True) == pytest.approx(-0.045 + 0.3, abs=1e-7)
    assert U(0.0, 0.0, -0.1, 0.0, False) == pytest.approx(-0.1, abs=1e-7)


def test_utility_absent_without_isr_is_environment_reward():
    assert U(COST, R_S, 0.0, 0.0, True) == pytest.approx(-0.045, abs=1e-7)  # the goal pays nothing
    assert U(COST, 0.0, 0.0, 0.0, False) == pytest.approx(-0.045, abs=1e-7)


@pytest.mark.parametrize("waive", [True, False])
def test_utility_fractional_presence_mixes_linearly(waive):
    p = 0.25
    mixed = U(COST, R_S, 0.2, p, waive)
    assert mixed == pytest.approx(p * U(COST, R_S, 0.2, 1.0, waive) + (1 - p) * U(COST, R_S, 0.2, 0.0, waive),
                                  abs=1e-7)
    if waive:
        assert mixed == pytest.approx(0.75 * COST + 0.25 * 0.4 + 0.75 * 0.2, abs=1e-7)  # 0.21625


def test_utility_broadcasts():
    r_e = jnp.asarray([[COST, 0.0], [COST, COST]])
    r_s = jnp.asarray([[R_S, 0.0], [0.0, R_S]])
    waive = r_s > 0
    u = np.asarray(presence.utility(r_e, r_s, 0.0, 1.0, waive))
    np.testing.assert_allclose(u, [[0.4, 0.0], [COST, 0.4]], atol=1e-7)
    u0 = np.asarray(presence.utility(r_e, r_s, 0.0, 0.0, waive))
    np.testing.assert_allclose(u0, np.asarray(r_e), atol=1e-7)


# ---------------------------------------------------------------------------------------------
# schedules


def test_probability_linear_ramp_clipped():
    s = presence.schedule(1.0, 0.0, 100.0)
    t = jnp.asarray([-10.0, 0.0, 25.0, 50.0, 100.0, 1000.0])
    np.testing.assert_allclose(np.asarray(presence.probability(s, t)), [1.0, 1.0, 0.75, 0.5, 0.0, 0.0], atol=1e-6)
    up = presence.schedule(0.2, 0.6, 40.0)
    np.testing.assert_allclose(np.asarray(presence.probability(up, jnp.asarray([0.0, 10.0, 40.0, 80.0]))),
                               [0.2, 0.3, 0.6, 0.6], atol=1e-6)
    const = presence.schedule(0.7)  # end defaults to start
    np.testing.assert_allclose(np.asarray(presence.probability(const, jnp.asarray([0.0, 1e6]))), [0.7, 0.7],
                               atol=1e-6)


def test_expected_mode_returns_probability():
    s = presence.schedule(1.0, 0.0, 100.0, "expected")
    draws = jnp.asarray([0.0, 0.3, 0.99])
    for t, p in ((0.0, 1.0), (30.0, 0.7), (200.0, 0.0)):
        out = np.asarray(presence.sample(s, jax.random.PRNGKey(int(t)), jnp.float32(t), draws))
        assert out.shape == (3,)
        np.testing.assert_allclose(out, p, atol=1e-6)


def test_per_step_mode_is_bernoulli():
    s = presence.schedule(0.3, mode="per_step")
    keys = jax.random.split(jax.random.PRNGKey(0), 20000)
    draws = jnp.full((4,), 0.99)  # the episode draw must not matter
    out = np.asarray(jax.vmap(lambda k: presence.sample(s, k, jnp.float32(5.0), draws))(keys))
    assert set(np.unique(out)) <= {0.0, 1.0}
    assert abs(out.mean() - 0.3) < 0.01
    # the four environments draw independently
    assert (out.min(1) != out.max(1)).any()
    # follows the ramp: p(t) = 0.5 halfway through a 1 -> 0 ramp
    ramp = presence.schedule(1.0, 0.0, 10.0, "per_step")
    mid = np.asarray(jax.vmap(lambda k: presence.sample(ramp, k, jnp.float32(5.0), draws))(keys))
    assert abs(mid.mean() - 0.5) < 0.01


def test_per_episode_mode_follows_episode_draw():
    s = presence.schedule(0.4, mode="per_episode")
    draws = jnp.asarray([0.0, 0.2, 0.39, 0.41, 0.8, 0.999])
    expected = np.asarray(draws) < 0.4
    for k in range(3):  # the step key does not matter
        out = np.asarray(presence.sample(s, jax.random.PRNGKey(k), jnp.float32(0.0), draws))
        np.testing.assert_array_equal(out, expected.astype(np.float32))
    # with a fading probability the caregiver leaves an episode once p(t) falls below its draw
    fade = presence.schedule(1.0, 0.0, 100.0, "per_episode")
    draw = jnp.asarray([0.6])
    ts = np.arange(0, 101, 5, dtype=np.float32)
    out = np.array([float(presence.sample(fade, jax.random.PRNGKey(0), jnp.float32(t), draw)[0]) for t in ts])
    np.testing.assert_array_equal(out, ((1 - ts / 100) > 0.6).astype(np.float32))


def test_present_and_absent():
    draws = jnp.asarray([0.0, 0.5, 0.999])
    for t in (0.0, 1e3, 1e7):
        p1 = presence.sample(presence.present(), jax.random.PRNGKey(0), jnp.float32(t), draws)
        p0 = presence.sample(presence.absent(), jax.random.PRNGKey(0), jnp.float32(t), draws)
        np.testing.assert_array_equal(np.asarray(p1), 1.0)
        np.testing.assert_array_equal(np.asarray(p0), 0.0)
        assert float(presence.probability(presence.present(), jnp.float32(t))) == 1.0
        assert float(presence.probability(presence.absent(), jnp.float32(t))) == 0.0


def test_schedules_of_different_modes_share_one_vmap():
    scheds = [presence.schedule(0.5, mode="expected"), presence.schedule(0.5, mode="per_episode"),
              presence.schedule(1.0, 0.0, 10.0, mode="per_step")]
    batch = jax.tree.map(lambda *xs: jnp.stack(xs), *scheds)
    draws = jnp.asarray([[0.2, 0.7]] * 3)
    out = np.asarray(jax.vmap(presence.sample, in_axes=(0, 0, None, 0))(
        batch, jax.random.split(jax.random.PRNGKey(0), 3), jnp.float32(10.0), draws))
    np.testing.assert_array_equal(out[0], [0.5, 0.5])
    np.testing.assert_array_equal(out[1], [1.0, 0.0])
    np.testing.assert_array_equal(out[2], [0.0, 0.0])  # p(10) = 0 after the ramp


@pytest.mark.parametrize("kwargs", [
    dict(start=1.5), dict(start=-0.1), dict(start=0.5, end=1.2), dict(start=0.5, end=-0.5),
    dict(start=0.5, mode="sometimes"), dict(start=0.5, horizon=0.0), dict(start=0.5, horizon=-3.0),
])
def test_schedule_rejects_invalid(kwargs):
    with pytest.raises(ValueError):
        presence.schedule(**kwargs)


def test_schedule_fields():
    s = presence.schedule(0.25, 0.75, 30.0, "per_episode")
    assert float(s.start) == 0.25 and float(s.end) == 0.75 and float(s.horizon) == 30.0
    assert int(s.mode) == presence.PER_EPISODE
    assert int(presence.schedule(0.1, mode="per_step").mode) == presence.PER_STEP
    assert int(presence.schedule(0.1).mode) == presence.EXPECTED
