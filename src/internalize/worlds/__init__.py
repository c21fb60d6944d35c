"""Worlds: each family in a module of its own, and a registry of them by name.

A *world spec* is a frozen dataclass of a world's settings (they become the run's ``world.*``
settings) with:

- ``env`` (property): the world's :class:`internalize.env.Env` (pure reset and step);
- ``params()``: its params pytree, ValueError (one line) when a setting is invalid;
- ``caregiver()``: the caregiver this world's experiments use unless they name another
  (:mod:`internalize.caregivers`);
- ``action_names``: a name per action (pictures and captions);
- ``render(rec, t, tile)`` (optional): step ``t`` of a recorded episode as an RGB image.

Built in: ``coin`` (:mod:`.coin`, SPEC 3), ``two_coin`` (:mod:`.two_coin`, the coin world with a
red and a blue coin) and ``prosocial`` (:mod:`.prosocial`, SPEC 8).
:mod:`.gymnax` brings a gymnax environment in as a world (needs ``gymnax``). An installed
package registers more through the ``internalize.worlds`` entry point group (a name and a
world spec class). What does not live here: the learner, caregivers and experiments.
"""
from __future__ import annotations

from .. import registry
from .coin import CoinWorld
from .prosocial import ProsocialWorld
from .two_coin import TwoCoinWorld

BUILTIN = {"coin": CoinWorld, "two_coin": TwoCoinWorld, "prosocial": ProsocialWorld}


def known() -> dict[str, type]:
    """Every world spec class by name: built in, then registered through entry points."""
    return registry.merged("internalize.worlds", BUILTIN)
