"""MoleculeBlueprintBuilder and MoleculeBlueprint: validation, copying, adding and removing steps, matching."""

from __future__ import annotations

from typing import Any

import pytest

from ephemeral.atoms.molecules import MoleculeBlueprint, MoleculeBlueprintBuilder, MoleculeContext
from ephemeral.core import SignalEvent, SignalSink


async def payment(ctx: MoleculeContext) -> None:
    ctx.state.setdefault("steps", []).append("payment")


async def inventory(ctx: MoleculeContext) -> None:
    ctx.state.setdefault("steps", []).append("inventory")


def event(name: str, key: str | None = None) -> SignalEvent[Any]:
    return SignalEvent(name, 1, key, SignalSink().now())


def test_build_keeps_name_pattern_and_steps_in_order() -> None:
    """build() gives a blueprint with the builder's name, pattern and steps, in the order added."""
    blueprint = MoleculeBlueprintBuilder("order", "order.placed").add_atom(payment).add_atom(inventory).build()
    assert isinstance(blueprint, MoleculeBlueprint)
    assert (blueprint.name, blueprint.trigger_pattern) == ("order", "order.placed")
    assert blueprint.steps == (payment, inventory)
    assert blueprint.condition is None
    assert "order" in repr(blueprint)


def test_build_copies_the_steps() -> None:
    """Steps added to the builder after build() do not reach the blueprint already built."""
    builder = MoleculeBlueprintBuilder("order", "order.*").add_atom(payment)
    blueprint = builder.build()
    builder.add_atom(inventory)
    assert blueprint.steps == (payment,)
    assert builder.build().steps == (payment, inventory)


def test_build_without_steps_raises() -> None:
    """A builder with no step refuses to build, naming the steps."""
    with pytest.raises(ValueError, match="steps"):
        MoleculeBlueprintBuilder("order", "order.*").build()
    with pytest.raises(ValueError, match="steps"):
        MoleculeBlueprint("order", "order.*", [])


@pytest.mark.parametrize(
    ("name", "pattern", "error", "argument"),
    [
        ("", "order.*", ValueError, "name"),
        ("   ", "order.*", ValueError, "name"),
        (None, "order.*", TypeError, "name"),
        ("order", "", ValueError, "trigger_pattern"),
        ("order", " ", ValueError, "trigger_pattern"),
        ("order", 42, TypeError, "trigger_pattern"),
    ],
)
def test_bad_name_or_pattern_raises_naming_it(name: Any, pattern: Any, error: type[Exception], argument: str) -> None:
    """A blank or non-string name or trigger pattern raises an error naming that argument."""
    with pytest.raises(error, match=argument):
        MoleculeBlueprintBuilder(name, pattern)
    with pytest.raises(error, match=argument):
        MoleculeBlueprint(name, pattern, [payment])


def test_non_callable_step_or_condition_raises_type_error() -> None:
    """add_atom, with_condition and the blueprint constructor reject what cannot be called."""
    builder = MoleculeBlueprintBuilder("order", "order.*")
    with pytest.raises(TypeError, match="step"):
        builder.add_atom("payment")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="condition"):
        builder.with_condition(True)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="step"):
        MoleculeBlueprint("order", "order.*", [payment, None])  # type: ignore[list-item]
    blueprint = builder.add_atom(payment).build()
    with pytest.raises(TypeError, match="step"):
        blueprint.add_atom(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="predicate"):
        blueprint.remove_atoms(None)  # type: ignore[arg-type]


def test_add_and_remove_after_build_change_the_blueprint() -> None:
    """A built blueprint still takes add_atom and remove_atoms; remove_atoms counts what it removed."""
    blueprint = MoleculeBlueprintBuilder("order", "order.*").add_atom(payment).build()
    assert blueprint.add_atom(inventory) is blueprint
    assert blueprint.add_atom(inventory).steps == (payment, inventory, inventory)
    assert blueprint.remove_atoms(lambda step: step is inventory) == 2
    assert blueprint.steps == (payment,)
    assert blueprint.remove_atoms(lambda step: step is inventory) == 0


def test_builder_remove_atoms_before_build() -> None:
    """remove_atoms on the builder drops matching steps before the blueprint is built."""
    builder = MoleculeBlueprintBuilder("order", "order.*").add_atom(payment).add_atom(inventory)
    assert builder.remove_atoms(lambda step: step is payment) == 1
    assert builder.build().steps == (inventory,)


def test_matches_needs_the_glob_and_every_condition() -> None:
    """matches() holds when the glob matches the name and every with_condition predicate holds."""
    blueprint = (
        MoleculeBlueprintBuilder("order", "order.*")
        .add_atom(payment)
        .with_condition(lambda signal: signal.key is not None)
        .with_condition(lambda signal: signal.key != "skip")
        .build()
    )
    assert blueprint.matches(event("order.placed", "o-1"))
    assert blueprint.matches(event("order.a.b", "o-1"))
    assert not blueprint.matches(event("order.placed"))
    assert not blueprint.matches(event("order.placed", "skip"))
    assert not blueprint.matches(event("order", "o-1"))
    assert not blueprint.matches(event("payment.placed", "o-1"))


def test_trigger_pattern_is_one_glob_not_a_comma_list() -> None:
    """A comma in a molecule's trigger pattern is a literal character, not a list of alternatives."""
    blueprint = MoleculeBlueprint("pair", "a,b", [payment])
    assert blueprint.matches(event("a,b"))
    assert not blueprint.matches(event("a"))
    assert not blueprint.matches(event("b"))
