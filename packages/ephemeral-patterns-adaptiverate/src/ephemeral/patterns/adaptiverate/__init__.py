"""Adaptive rate: rate-limit hints from the work slow the whole service for as long as asked, then it recovers.

``AdaptiveRateService(body, max_concurrency=8)``; ``await service.process(item)`` returns once the item is
accepted. A body that emits ``rate-limit:500ms`` or ``retry-after:2s`` on its operation, or raises an
exception with a ``retry_after`` (``RateLimitException``), holds every new start back for that long.
"""

from __future__ import annotations

from ._adaptiverate import AdaptiveRateService as AdaptiveRateService, RateLimitException as RateLimitException

__all__ = ("AdaptiveRateService", "RateLimitException")
