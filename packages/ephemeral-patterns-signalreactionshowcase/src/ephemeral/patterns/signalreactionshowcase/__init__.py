"""A demo of the ways ephemeral code reacts to signals, side by side.

``await SignalReactionShowcase.run(item_count=8)`` runs work that emits ``stage.start:{i}`` and
``stage.done:{i}`` and reacts to them with ``on_signal``, ``on_signal_async``, a ``SignalDispatcher`` and a
read of the sink's window, then shows ``defer_on_signals`` and ``cancel_on_signals`` holding back and
skipping work. Run ``python -m ephemeral.patterns.signalreactionshowcase`` to watch it.
"""

from __future__ import annotations

from ._signalreactionshowcase import (
    SignalReactionResult as SignalReactionResult,
    SignalReactionShowcase as SignalReactionShowcase,
)

__all__ = ("SignalReactionResult", "SignalReactionShowcase")
