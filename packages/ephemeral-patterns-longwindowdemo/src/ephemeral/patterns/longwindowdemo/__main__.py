"""``python -m ephemeral.patterns.longwindowdemo``: watch memory stay bounded by the window."""

from __future__ import annotations

import anyio

from ._longwindowdemo import LongWindowDemo


async def main() -> None:
    """Run the same window with more and more items and print what the coordinator keeps."""
    window = 1_000
    print(f"A coordinator remembers its last {window:,} operations (max_tracked_operations={window:,}),")
    print("each for up to 24 hours (max_operation_lifetime). Pushing more and more items through it:\n")
    print(f"{'items':>8}  {'completed':>9}  {'tracked at the end':>18}  {'most tracked at once':>20}")
    for total in (1_000, 10_000, 50_000):
        result = await LongWindowDemo.run(total_items=total, window_size=window)
        print(
            f"{total:>8,}  {result.completed_count:>9,}  {result.tracked_count:>18,}  {result.peak_tracked_count:>20,}"
        )
    print(f"\nFifty times the work, the same {window:,} operations remembered: memory is bounded by the")
    print("window, not by the work. For an audit trail, LongWindowDemo.audit_options() keeps 10,000")
    print("operations for 24 hours; older ones leave on their own, with no timer waking while idle.")


if __name__ == "__main__":
    anyio.run(main)
