"""``python -m ephemeral.patterns.signalcoordinatedreads``: reads pausing for an update, narrated."""

from __future__ import annotations

import anyio

from ._signalcoordinatedreads import SignalCoordinatedReads


async def main() -> None:
    """Run 10 reads (4 at a time, 5 ms each) beside one 50 ms update, narrating each step."""
    print("10 reads (4 at a time, 5 ms each) and one 50 ms update, coordinated by signals, no lock:\n")
    result = await SignalCoordinatedReads.run(read_count=10, update_count=1, narrate=print)
    print(f"\nReads: {result.reads_completed}, Updates: {result.updates_completed}")
    print(f"Reads started while the update ran: {result.reads_started_during_update}")
    print(f"Reads that waited for the update and ran after it: {result.reads_after_update}")
    print(f"Signals: {', '.join(result.signals)}")


if __name__ == "__main__":
    anyio.run(main)
