"""A run that cannot fit is refused before it starts (issue 13, item 10): stated limits on the
settings, and the peak memory estimated from shapes against the memory available."""
from __future__ import annotations

from dataclasses import replace

import pytest

from internalize.config import PRESETS
from internalize.experiments import EXPERIMENTS, capacity, configure, settings_for


class Done:
    def __init__(self, code, out, err):
        self.returncode, self.stdout, self.stderr = code, out, err


@pytest.fixture
def cli(capsys):
    """The command line in this process (no interpreter to start)."""
    from internalize import cli as cli_

    def call(*args: str) -> Done:
        code = cli_.main(list(args))
        out, err = capsys.readouterr()
        return Done(code, out, err)

    return call


def test_the_new_users_typo_is_refused_at_once(cli, tmp_path):
    """`--seeds 100000000` once grew until the machine's 24 GiB were gone; now it is one line."""
    proc = cli("run", "unlearning", "--seeds", "100000000", "--results", str(tmp_path / "r"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "seeds must be at most 10,000" in proc.stderr
    assert not (tmp_path / "r").exists()


def test_a_run_beyond_the_memory_available_is_refused_with_its_estimate(cli, tmp_path):
    proc = cli("run", "prosocial", "--seeds", "5000", "--results", str(tmp_path / "r"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "would need about" in proc.stderr and "GiB" in proc.stderr and "--ignore-memory-check" in proc.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("flag,value,fragment", [
    ("--budget.autonomy_steps", "2000000000", "budget.autonomy_steps must be at most"),
    ("--ppo.n_envs", "100000", "ppo.n_envs must be at most"),
    ("--eval_episodes", "5000000", "eval_episodes must be at most"),
])
def test_absurd_values_are_refused_up_front(cli, tmp_path, flag, value, fragment):
    proc = cli("config", "unlearning", flag, value)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and fragment in proc.stderr


def test_the_estimate_grows_with_seeds_and_steps_and_names_its_parts():
    exp, preset = EXPERIMENTS["unlearning"], PRESETS["fast"]
    s = settings_for(exp, preset)
    base = capacity.estimate(exp, preset, s)
    more_seeds = capacity.estimate(exp, preset, replace(s, seeds=20))
    more_steps = capacity.estimate(exp, preset, replace(s, budget=replace(s.budget, socialize_steps=240_000)))
    assert more_seeds.total > base.total and more_steps.total > base.total
    assert set(base.parts) == {"socialization data", "collect buffer", "rollouts", "process"}
    # socialization data: 10 seeds x 120,832 steps (59 updates of 2,048) x (81 x 4 obs + 4 action + 4 R_s
    # + 4 intended R_s bytes), 3 copies
    assert base.parts["socialization data"] == 3 * 10 * 59 * 2048 * (9 * 9 * 4 + 12)
    assert "GiB" in base.describe()


def test_the_memory_check_refuses_only_above_what_is_available(monkeypatch):
    exp, preset = EXPERIMENTS["unlearning"], PRESETS["fast"]
    s = settings_for(exp, preset)
    need = capacity.estimate(exp, preset, s).total
    monkeypatch.setattr(capacity, "available_bytes", lambda: need + 1)
    assert capacity.check_memory(exp, preset, s).total == need
    monkeypatch.setattr(capacity, "available_bytes", lambda: need - 1)
    with pytest.raises(ValueError, match="would need about"):
        capacity.check_memory(exp, preset, s)


def test_the_override_flag_skips_the_memory_check(monkeypatch):
    from internalize import cli as cli_

    monkeypatch.setattr(capacity, "available_bytes", lambda: 1)
    args = cli_._build_parser(["run", "unlearning"]).parse_args(["run", "unlearning"])
    with pytest.raises(cli_.UsageError, match="would need about"):
        cli_._resolve(["unlearning"], args)
    args = cli_._build_parser(["run", "unlearning"]).parse_args(["run", "unlearning", "--ignore-memory-check"])
    (exp, preset, s, ref), = cli_._resolve(["unlearning"], args)
    assert exp.name == "unlearning" and ref is None and configure(exp, preset, s)[0].budget == s.budget
