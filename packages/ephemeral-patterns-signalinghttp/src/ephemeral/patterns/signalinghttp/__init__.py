"""httpx downloads that report their stages and progress as ephemeral signals.

``await SignalingHttpClient.download_with_signals(client, request, emitter)`` streams the response body and
emits ``stage.starting``, ``progress:0``, ``stage.request``, ``stage.headers``, ``stage.reading``,
``progress:25/50/75/100`` and ``stage.completed`` (or ``stage.failed:{reason}``) on ``emitter``.
"""

from __future__ import annotations

from ._signalinghttp import SignalEmitter as SignalEmitter, SignalingHttpClient as SignalingHttpClient

__all__ = ("SignalEmitter", "SignalingHttpClient")
