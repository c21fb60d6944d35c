"""Tests of the caregiver's presence and the learner's utility (internalize.presence, SPEC 2)."""
from __future__ import annotations

import internalize  # noqa: F401  (sets the XLA flags before JAX starts; keep it first)

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize import presence
from internalize.config import PresenceSpec

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


# ---------------------------------------------------------------------------------------------
# delays, schedules stated in fractions of a phase, and the ways of leaving (issue 15)


def test_delay_holds_the_start_then_ramps():
    s = presence.schedule(1.0, 0.0, 100.0, delay=50.0)
    t = jnp.asarray([0.0, 49.0, 50.0, 100.0, 150.0, 1e6])
    np.testing.assert_allclose(np.asarray(presence.probability(s, t)), [1.0, 1.0, 1.0, 0.5, 0.0, 0.0], atol=1e-6)
    with pytest.raises(ValueError, match="delay"):
        presence.schedule(1.0, 0.0, 10.0, delay=-1.0)


def test_phase_unit_states_horizon_and_delay_as_fractions_of_the_phase():
    spec = PresenceSpec(1.0, 0.0, horizon=0.25, delay=0.5, unit="phase")
    s = presence.from_spec(spec, 40_000)
    assert (float(s.delay), float(s.horizon)) == (20_000.0, 10_000.0)
    np.testing.assert_allclose(np.asarray(presence.probability(s, jnp.asarray([19_999.0, 25_000.0, 30_000.0]))),
                               [1.0, 0.5, 0.0], atol=1e-6)
    for bad, match in ((PresenceSpec(1.0, 0.0, horizon=1.5, unit="phase"), "fraction"),
                       (PresenceSpec(1.0, 0.0, unit="episodes"), "unknown presence unit")):
        with pytest.raises(ValueError, match=match):
            presence.from_spec(bad, 1000)


@pytest.mark.parametrize("autonomy,socialize", [(120_000, 120_000), (30_000, 30_000)])
def test_the_ways_of_leaving_at_their_boundaries(autonomy, socialize):
    """The leaving experiment's schedules, at the full and the quick budget (steps scale with the phase)."""
    from internalize.experiments import leaving

    ways = leaving.schedules(leaving.Design())
    assert set(ways) == {"abrupt", "fade20k", "fade60k", "weaning", "visits"}
    k = autonomy / 120_000

    def p(spec, steps, t):
        return float(presence.probability(presence.from_spec(spec, steps), jnp.float32(t)))

    def there(spec, steps, t, draw):  # per-episode draws: whole episodes with or without the caregiver
        return float(presence.sample(presence.from_spec(spec, steps), jax.random.PRNGKey(0), jnp.float32(t),
                                     jnp.asarray([draw]))[0])

    assert ways["abrupt"] == (None, None)  # the experiment's own: gone at once
    for name, length in (("fade20k", 20_000), ("fade60k", 60_000)):
        aut, soc = ways[name]
        assert soc is None and aut.mode == "per_episode"
        assert p(aut, autonomy, 0) == 1.0 and p(aut, autonomy, autonomy) == 0.0
        assert p(aut, autonomy, 0.5 * length * k) == pytest.approx(0.5, abs=1e-6)
        assert p(aut, autonomy, length * k) == 0.0 and p(aut, autonomy, length * k - 10) > 0.0
        assert there(aut, autonomy, 0.5 * length * k, 0.3) == 1.0 and there(aut, autonomy, 0.5 * length * k, 0.7) == 0
    aut, soc = ways["weaning"]
    assert aut is None  # then gone at once
    start = socialize - 40_000 * socialize / 120_000  # the last third of socialization
    assert p(soc, socialize, 0) == 1.0 and p(soc, socialize, start) == 1.0
    assert p(soc, socialize, start + 1) == pytest.approx(0.5) and p(soc, socialize, socialize) == pytest.approx(0.5)
    assert there(soc, socialize, start + 1, 0.49) == 1.0 and there(soc, socialize, start + 1, 0.51) == 0.0
    assert there(soc, socialize, start - 1, 0.99) == 1.0
    aut, soc = ways["visits"]
    assert soc is None
    for t in (0, autonomy / 2, autonomy):
        assert p(aut, autonomy, t) == pytest.approx(0.1)
        assert there(aut, autonomy, t, 0.09) == 1.0 and there(aut, autonomy, t, 0.11) == 0.0


def test_the_learner_counts_schedule_time_in_all_environments_steps():
    """Schedules count the phase's environment steps of all environments together, as budgets do:
    4 environments x 8 steps over a ramp of 64 steps is halfway down it, not an eighth."""
    import dataclasses

    from internalize import caregivers, learner as L
    from internalize.config import PRESETS
    from internalize.worlds import coin

    cfg = dataclasses.replace(PRESETS["fast"].ppo, n_envs=4, n_steps=8, minibatch_size=32)
    lrn = L.Learner(cfg, coin.COIN)
    wp = coin.coin_params()
    cg = caregivers.as_arrays(coin.CoinWorld().caregiver())
    state = lrn.init(jax.random.PRNGKey(0), wp, cg)
    spec = L.RunSpec(wp, cg, presence.schedule(1.0, 0.0, 64.0), jnp.float32(0.0), ())
    _, traj = jax.jit(lrn.rollout)(state, spec)
    expected = 1.0 - 4 * np.arange(8) / 64  # step t of each environment: 4t steps of the phase so far
    np.testing.assert_allclose(np.asarray(traj.presence), np.repeat(expected[:, None], 4, 1), atol=1e-6)
    # What socialization keeps for the ISR: R_s where the caregiver was there, NaN (unobserved) where not.
    half = spec.replace(presence=presence.schedule(0.5, mode="per_step"))
    _, m, data = jax.jit(lambda s, sp: lrn.chunk(s, sp, jnp.int32(1), max_updates=1, collect=True))(state, half)
    r_s = np.asarray(data[2])
    assert 0.3 < np.isnan(r_s).mean() < 0.7
    _, _, full = jax.jit(lambda s, sp: lrn.chunk(s, sp, jnp.int32(1), max_updates=1, collect=True))(state, spec)
    assert not np.isnan(np.asarray(full[2])).any()  # P > 0 on every step: all observed
