"""Tests of socialization by demonstration (internalize.demonstrations): the coin world's scripted
demonstrator, collecting its steps, behaviour cloning, AIRL with the PPO learner as generator,
the models' settings, and the learner's rollout / learn split that AIRL builds on.

Everything runs on a 3x3 room without walls (episodes of 7 steps) with a small PPO, and one
AIRL run is shared by the module, so the file stays well under a minute on one core.
"""
from __future__ import annotations

import internalize  # noqa: F401  (sets the XLA flags before JAX starts; keep it first)

import dataclasses
from collections import deque

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from internalize import caregivers, presence, reward_models
from internalize import demonstrations as D
from internalize import learner as L
from internalize.config import FAST
from internalize.reward_models.airl import Airl
from internalize.reward_models.bc import BehaviourCloning
from internalize.worlds import coin

WORLD = coin.CoinWorld(n_walls=0, size=3)
WP = WORLD.params()
PPO = dataclasses.replace(FAST.ppo, n_envs=8, n_steps=32, minibatch_size=64)
RUNS = 2
AIRL_UPDATES = 40


def _spec(cg=None):
    cg = caregivers.as_arrays(cg or WORLD.caregiver())
    one = L.RunSpec(WP, cg, presence.present(), jnp.float32(0.0), ())
    return jax.tree.map(lambda *x: np.stack([np.asarray(v) for v in x]), *[one] * RUNS)


# ---------------------------------------------------------------------------------------------
# The scripted demonstrator


LAYOUTS = {  # rows are y; '#' wall, 'G' goal; every other free cell is a start
    "ring": """
        ######
        #....#
        #.##.#
        #.G#.#
        #....#
        ######""",
    "corridors": """
        ######
        #.#..#
        #.#.##
        #.#.G#
        #....#
        ######""",
    "pocket": """
        ######
        #..#.#
        #..#.#
        ####.#
        #G...#
        ######""",
}
P4 = coin.coin_params(n_walls=0, size=4)


def _layout(text):
    rows = [r.strip() for r in text.strip().splitlines()]
    goal = next((x, y) for y, r in enumerate(rows) for x, c in enumerate(r) if c == "G")
    return coin.parse_map(text.replace("G", ".")), goal


def _bfs(walls, goal, x, y, d):
    """Steps from (x, y) facing d to stepping onto goal, turns counted (None: unreachable)."""
    dist = {(x, y, d): 0}
    queue = deque([(x, y, d)])
    while queue:
        s = queue.popleft()
        cx, cy, k = s
        nxt = [(cx, cy, (k + 3) % 4), (cx, cy, (k + 1) % 4)]
        fx, fy = cx + coin.DIR_VEC[k][0], cy + coin.DIR_VEC[k][1]
        if not walls[fx, fy]:
            if (fx, fy) == goal:
                return dist[s] + 1
            nxt.append((fx, fy, k))
        for n in nxt:
            if n not in dist:
                dist[n] = dist[s] + 1
                queue.append(n)
    return None


def _starts(walls, goal):
    """Every start (cell, direction) but the goal's, padded with copies of the first to one shape
    for all layouts (one compiled program)."""
    cells = [(x, y, d) for x in range(walls.shape[0]) for y in range(walls.shape[1]) for d in range(4)
             if not walls[x, y] and (x, y) != goal]
    cells += [cells[0]] * (4 * 16 - len(cells))
    n = len(cells)
    states = coin.CoinState(jnp.asarray(np.repeat(walls[None], n, 0)), jnp.asarray(np.tile(goal, (n, 1)), jnp.int32),
                            jnp.asarray([c[:2] for c in cells], jnp.int32),
                            jnp.asarray([c[2] for c in cells], jnp.int32), jnp.zeros(n, jnp.int32))
    return cells, states


@jax.jit
def _steps_to_goal(states, key):
    """Per start state: the step on which the epsilon-0 demonstrator steps onto the goal (-1: never in 40)."""

    def one(state, key):
        def body(carry, k):
            st, first, t = carry
            k_a, k_s = jax.random.split(k)
            a = coin.demonstrator_action(k_a, st, P4, epsilon=0.0)
            _, st, _, _, _, info = coin.step(k_s, st, a, P4)
            first = jnp.where((first < 0) & info["goal_reached"], t + 1, first)
            return (st, first, t + 1), None

        return jax.lax.scan(body, (state, jnp.int32(-1), jnp.int32(0)), jax.random.split(key, 40))[0][1]

    return jax.vmap(one)(states, jax.random.split(key, states.pos.shape[0]))


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_demonstrator_takes_a_shortest_path_counting_turns(name):
    walls, goal = _layout(LAYOUTS[name])
    cells, states = _starts(walls, goal)
    got = np.asarray(_steps_to_goal(states, jax.random.PRNGKey(0)))
    want = [_bfs(walls, goal, *c) for c in cells]
    reachable = np.array([w is not None for w in want])
    np.testing.assert_array_equal(got[reachable], np.array([w for w in want if w is not None]))
    assert reachable.all() == (name != "pocket")
    # and the distances it acts on are the BFS's, everywhere
    d = np.asarray(jax.jit(coin.turn_distances)(jnp.asarray(walls), jnp.asarray(goal)))
    for c, w in zip(cells, want):
        assert d[c] == (np.inf if w is None else w), (c, d[c], w)


def test_demonstrator_acts_at_random_at_the_epsilon_rate_and_where_the_goal_is_out_of_reach():
    walls, goal = _layout(LAYOUTS["pocket"])
    cells, states = _starts(walls, goal)
    pick = lambda c: jax.tree.map(lambda x: x[cells.index(c)], states)  # noqa: E731
    keys = jax.random.split(jax.random.PRNGKey(1), 6000)
    act = jax.jit(lambda demonstrator, keys, state: jax.vmap(demonstrator, in_axes=(0, None, None))(keys, state, P4))
    # At (4, 1) facing down the way to the goal is straight ahead: forward unless exploring.
    a = np.asarray(act(WORLD.demonstrator(epsilon=0.3), keys, pick((4, 1, 1))))
    assert abs(np.mean(a != coin.FORWARD) - 0.3 * 2 / 3) < 0.02
    # Inside the walled-off pocket the goal cannot be reached: uniform actions, whatever epsilon.
    a = np.asarray(act(WORLD.demonstrator(epsilon=0.0), keys, pick((1, 1, 0))))
    np.testing.assert_allclose(np.bincount(a, minlength=3) / len(a), 1 / 3, atol=0.025)


# ---------------------------------------------------------------------------------------------
# Collecting demonstrations


def test_collect_shapes_and_order():
    n_envs, steps, t = PPO.n_envs, 2041, 256  # rounded up to 256 steps of 8 environments
    demos = D.collect(jax.random.split(jax.random.PRNGKey(2), RUNS), WORLD.env, WP, WORLD.demonstrator(), n_envs, steps)
    n = t * n_envs
    v = WP.view
    assert demos.obs.shape == (RUNS, n, v, v, 4) and demos.obs.dtype == np.uint8
    assert demos.next_obs.shape == (RUNS, n, v, v, 4) and demos.next_obs.dtype == np.uint8
    assert demos.action.shape == (RUNS, n) and demos.action.dtype == np.int32
    assert demos.done.shape == (RUNS, n) and demos.done.dtype == bool
    # index = tau * n_envs + e: environment e's next observation is its observation one step on
    obs = demos.obs.reshape(RUNS, t, n_envs, v, v, 4)
    nxt = demos.next_obs.reshape(RUNS, t, n_envs, v, v, 4)
    done = demos.done.reshape(RUNS, t, n_envs)
    same = np.all(nxt[:, :-1] == obs[:, 1:], axis=(3, 4, 5))
    assert same[~done[:, :-1]].all()
    assert not same[done[:, :-1]].all()  # a reset starts a new layout
    # every environment's episode ends together, at the time limit (7 steps)
    expect = (np.arange(t) + 1) % int(WP.max_steps) == 0
    np.testing.assert_array_equal(done, np.broadcast_to(expect[None, :, None], done.shape))
    assert not np.array_equal(demos.obs[0], demos.obs[1])  # the runs' keys differ
    # the demonstrator mostly walks: about a third of its steps are forward moves or more
    assert 0.3 < np.mean(demos.action == coin.FORWARD) < 0.9


# ---------------------------------------------------------------------------------------------
# Behaviour cloning


def test_behaviour_cloning_copies_the_demonstrator():
    keys = jax.random.split(jax.random.PRNGKey(3), RUNS)
    demos = D.collect(keys, WORLD.env, WP, WORLD.demonstrator(0.1), PPO.n_envs, 2048)
    held = D.collect(jax.random.split(jax.random.PRNGKey(4), RUNS), WORLD.env, WP, WORLD.demonstrator(0.0), PPO.n_envs,
                     2048)
    lrn = L.Learner(PPO, WORLD.env)
    model = BehaviourCloning()
    bound = reward_models.bind(model, FAST.isr, WORLD.env, WP)
    got = D.learn(lrn, jax.random.split(jax.random.PRNGKey(5), RUNS), _spec(), demos, bound, 0, 8)
    assert set(got.metrics) == {"bc_loss", "bc_accuracy"}
    assert got.metrics["bc_loss"].shape == (RUNS, model.epochs)
    assert (got.metrics["bc_loss"][:, -1] < got.metrics["bc_loss"][:, 0]).all()
    for r in range(RUNS):
        params = jax.tree.map(lambda x: x[r], got.state.params)
        dist, _ = jax.jit(lrn.policy)(params, held.obs[r])
        assert np.mean(np.asarray(dist.mode()) == held.action[r]) > 0.9
        # a fresh optimizer for what comes next, and no reward
        fresh = lrn.tx.init(params)
        for a, b in zip(jax.tree.leaves(jax.tree.map(lambda x: x[r], got.state.opt_state)), jax.tree.leaves(fresh)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    r_i = bound.reward(jax.tree.map(lambda x: x[0], got.params), held.obs[0], held.action[0])
    assert r_i.shape == (held.action.shape[1],) and not np.asarray(r_i).any()
    # the same kind of state as AIRL's, which is checked to enter autonomy (below)
    assert jax.tree.structure(got.state) == jax.tree.structure(jax.eval_shape(
        jax.vmap(lrn.init), jax.random.split(jax.random.PRNGKey(6), RUNS), _spec().world, _spec().caregiver))


# ---------------------------------------------------------------------------------------------
# AIRL (one run shared by the module)


@pytest.fixture(scope="module")
def airl():
    demos = D.collect(jax.random.split(jax.random.PRNGKey(7), RUNS), WORLD.env, WP, WORLD.demonstrator(), PPO.n_envs,
                      2048)
    lrn = L.Learner(PPO, WORLD.env)
    bound = reward_models.bind(Airl(), FAST.isr, WORLD.env, WP)
    told = []
    got = D.learn(lrn, jax.random.split(jax.random.PRNGKey(8), RUNS), _spec(), demos, bound,
                  AIRL_UPDATES * PPO.batch_size, 8, told.append)
    return dict(learner=lrn, bound=bound, demos=demos, got=got, told=told)


def test_airl_result_shapes_and_progress(airl):
    got, lrn = airl["got"], airl["learner"]
    for k in ("goals_per_episode", "disc_loss", "disc_accuracy", "pg_loss", "entropy", "utility_return"):
        assert got.metrics[k].shape == (RUNS, AIRL_UPDATES), k
        assert np.isfinite(got.metrics[k]).all(), k
    assert "presence" not in got.metrics
    assert sum(airl["told"]) == RUNS * AIRL_UPDATES * PPO.batch_size and len(airl["told"]) == AIRL_UPDATES // 8
    assert int(got.state.t[0]) == AIRL_UPDATES * PPO.n_steps
    # ready for autonomy: its R_i is g, and a new phase keeps the policy
    r_i = airl["bound"].reward(jax.tree.map(lambda x: x[0], got.params), airl["demos"].obs[0, :10],
                               airl["demos"].action[0, :10])
    assert r_i.shape == (10,)
    entered = jax.jit(jax.vmap(lrn.enter_phase))(got.state, jax.random.split(jax.random.PRNGKey(9), RUNS),
                                                 _spec().world, _spec().caregiver)
    for a, b in zip(jax.tree.leaves(entered.params), jax.tree.leaves(got.state.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_airl_learns_that_entering_the_goal_is_what_pays(airl):
    bound, got = airl["bound"], airl["got"]
    reward = jax.jit(jax.vmap(bound.reward, in_axes=(0, None, None)))  # every run's g at once
    for seed in range(3):
        lay, _, obs, actions, cells = WORLD.value_map_steps(jax.random.PRNGKey(100 + seed))
        goal = (cells[:, 0] == lay.goal[0]) & (cells[:, 1] == lay.goal[1])
        gs = np.asarray(reward(got.params, jnp.asarray(obs), jnp.asarray(actions)))
        for r in range(RUNS):
            g = gs[r]
            assert g[goal].mean() > g[~goal].mean() + 0.3, (seed, r)


def _goals_per_episode(demos):
    """Goals per episode of collected steps: a forward step with the goal in front of the agent
    (view cell [r + 1, r] of the egocentric view, r = size - 1) reaches it."""
    r = WP.size - 1
    goal_ahead = demos.obs[..., r + 1, r, 3] == 1
    return ((demos.action == coin.FORWARD) & goal_ahead).sum(-1) / (demos.action.shape[-1] / int(WP.max_steps))


def test_airl_generator_beats_a_random_policy(airl):
    rand = D.collect(jax.random.split(jax.random.PRNGKey(10), RUNS), WORLD.env, WP, WORLD.demonstrator(1.0),
                     PPO.n_envs, 2048)
    random_goals = _goals_per_episode(rand).mean()
    demo_goals = _goals_per_episode(airl["demos"]).mean()
    assert 0.05 < random_goals < demo_goals / 4  # (the baseline is a random policy's, measured right)
    # the first update's rollout is the fresh, near-uniform policy's
    assert abs(airl["got"].metrics["goals_per_episode"][:, 0].mean() - random_goals) < 0.12
    trained = airl["got"].metrics["goals_per_episode"][:, -5:].mean(1)
    assert (trained > 2 * random_goals + 0.1).all(), (trained, random_goals)


def test_airl_never_reads_the_caregivers_reward(airl):
    """The same AIRL run under a caregiver that pays ten times as much comes out bitwise the same."""
    lrn, bound, demos = airl["learner"], airl["bound"], airl["demos"]
    keys = jax.random.split(jax.random.PRNGKey(12), RUNS)
    a = D.learn(lrn, keys, _spec(), demos, bound, 8 * PPO.batch_size, 8)
    b = D.learn(lrn, keys, _spec(caregivers.GoalPraise(4.0, waives_step_cost=True)), demos, bound,
                8 * PPO.batch_size, 8)
    for x, y in zip(jax.tree.leaves((a.params, a.state.params)), jax.tree.leaves((b.params, b.state.params))):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    # the caregiver's view did change (a curve, never a reward)
    assert not np.array_equal(a.metrics["true_return"], b.metrics["true_return"])


def test_airl_fit_on_a_fixed_set_separates_demonstrations_from_random_steps(airl):
    keys = jax.random.split(jax.random.PRNGKey(13), 1)
    demo = jax.tree.map(lambda x: x[0], airl["demos"])
    rand = jax.tree.map(lambda x: x[0], D.collect(keys, WORLD.env, WP, WORLD.demonstrator(1.0), PPO.n_envs, 2048))
    logp = np.full(rand.action.shape, -np.log(3), np.float32)
    bound = reward_models.bind(Airl(disc_batch=64), dataclasses.replace(FAST.isr, epochs=4.0), WORLD.env, WP)
    data = (demo.obs, demo.action, demo.next_obs, rand.obs, rand.action, rand.next_obs, logp)
    fit = jax.jit(lambda k, d, p: bound.fit(k, d, None, p))
    res = fit(jax.random.PRNGKey(14), data, jax.jit(bound.init)(jax.random.PRNGKey(14)))
    n_eval = reward_models.N_EVALS
    assert res.train_loss.shape == res.test_mse.shape == (n_eval,)
    assert float(res.test_mse[-1]) < 0.9 * float(res.test_mse[0])
    t = res.test_pred.shape[0]
    assert res.test_target.shape == res.test_mask.shape == (t,) and bool(res.test_mask.all())
    pred, target = np.asarray(res.test_pred), np.asarray(res.test_target)
    assert np.mean((pred > 0) == (target == 1)) > 0.7


# ---------------------------------------------------------------------------------------------
# Settings and dispatch


@pytest.mark.parametrize("model,field", [
    (Airl(disc_steps=0), "disc_steps"), (Airl(disc_batch=0), "disc_batch"), (Airl(h_hidden=(0,)), "h_hidden"),
    (Airl(gamma=1.5), "gamma"), (BehaviourCloning(epochs=0), "epochs"), (BehaviourCloning(batch_size=0), "batch_size"),
    (BehaviourCloning(lr=0.0), "lr"), (BehaviourCloning(holdout=1.0), "holdout"),
])
def test_bad_settings_name_the_field(model, field):
    with pytest.raises(ValueError, match=rf"^learners\.{model.name}\.{field} ") as err:
        model.validate()
    assert "\n" not in str(err.value)
    lrn = L.Learner(PPO, WORLD.env)
    bound = reward_models.bind(model, FAST.isr, WORLD.env, WP)
    with pytest.raises(ValueError, match=rf"learners\.{model.name}\.{field}"):  # before anything runs
        D.learn(lrn, jax.random.split(jax.random.PRNGKey(0), RUNS), _spec(), None, bound, 1, 1)


def test_models_declare_demonstrations_and_settings_with_help():
    from internalize import config

    for model, name in ((Airl(), "irl"), (BehaviourCloning(), "bc")):
        assert model.name == name and tuple(model.needs) == tuple(reward_models.DEMONSTRATIONS)
        assert isinstance(model, reward_models.RewardModel)
        model.validate()
        fields = [f.name for f in dataclasses.fields(model) if f.name != "name"]
        helps = config.field_help(type(model))
        assert fields and all(helps.get(f) for f in fields), helps


def test_a_model_that_learns_from_praise_is_refused():
    lrn = L.Learner(PPO, WORLD.env)
    bound = reward_models.bind(reward_models.ISR, FAST.isr, WORLD.env, WP)
    with pytest.raises(ValueError, match="does not learn from demonstrations"):
        D.learn(lrn, jax.random.split(jax.random.PRNGKey(0), RUNS), _spec(), None, bound, 1, 1)


# ---------------------------------------------------------------------------------------------
# The learner's split: update = rollout + utility + learn + metrics, bitwise as before


def test_update_is_rollout_then_learn_bitwise():
    lrn = L.Learner(PPO, WORLD.env)
    spec = jax.tree.map(lambda x: x[0], _spec())
    state = jax.jit(lrn.init)(jax.random.PRNGKey(15), WP, spec.caregiver)

    def by_hand(state, spec):
        st, traj = lrn.rollout(state, spec)
        r_i = lrn.internal_reward(spec, traj.obs, traj.isr_action)
        u = presence.utility(traj.r_e, traj.r_s, r_i, traj.presence, traj.waive,
                             replace=spec.isr_gain * spec.isr_replaces_reward)
        st, aux = lrn.learn(st, traj, u)
        return st, lrn.metrics(spec, traj, r_i, u, aux)

    # One program for both (compiled once). That update's results did not change with the split
    # is the golden tests' job (tests/golden, test_reproduction): they pass bitwise.
    (new, metrics), (hand, hand_metrics) = jax.jit(lambda s, p: (lrn.update(s, p)[:2], by_hand(s, p)))(state, spec)
    assert any(not np.array_equal(np.asarray(a), np.asarray(b))
               for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(state.params)))
    for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(hand)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert set(metrics) == set(hand_metrics)
    for k in metrics:
        np.testing.assert_array_equal(np.asarray(metrics[k]), np.asarray(hand_metrics[k]), err_msg=k)
