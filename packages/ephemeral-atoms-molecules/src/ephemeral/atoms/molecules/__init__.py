"""Molecules: ordered async steps run when a signal arrives, and triggers that react to signals.

``MoleculeBlueprintBuilder(name, trigger_pattern).add_atom(step).build()`` describes a molecule;
``MoleculeRunner(sink, blueprints)`` runs its steps in order for every matching signal, and
``AtomTrigger(sink, pattern, action)`` runs one action per matching signal.
"""

from __future__ import annotations

from ._molecules import (
    AtomTrigger as AtomTrigger,
    MoleculeBlueprint as MoleculeBlueprint,
    MoleculeBlueprintBuilder as MoleculeBlueprintBuilder,
    MoleculeContext as MoleculeContext,
    MoleculeFailure as MoleculeFailure,
    MoleculeRunner as MoleculeRunner,
    MoleculeStep as MoleculeStep,
    TriggerAction as TriggerAction,
    TriggerCondition as TriggerCondition,
)

__all__ = (
    "AtomTrigger",
    "MoleculeBlueprint",
    "MoleculeBlueprintBuilder",
    "MoleculeContext",
    "MoleculeFailure",
    "MoleculeRunner",
    "MoleculeStep",
    "TriggerAction",
    "TriggerCondition",
)
