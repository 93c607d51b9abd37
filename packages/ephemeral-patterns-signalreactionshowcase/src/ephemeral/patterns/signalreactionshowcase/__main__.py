"""``python -m ephemeral.patterns.signalreactionshowcase``: every way of reacting to a signal, narrated."""

from __future__ import annotations

import anyio

from ._signalreactionshowcase import SignalReactionShowcase


async def main() -> None:
    """Run the showcase with 8 items, narrating each step."""
    result = await SignalReactionShowcase.run(item_count=8, narrate=print)
    print(f"\n{len(result.signals)} signals went through the sink, in this order:")
    print("  " + ", ".join(result.signals))


if __name__ == "__main__":
    anyio.run(main)
