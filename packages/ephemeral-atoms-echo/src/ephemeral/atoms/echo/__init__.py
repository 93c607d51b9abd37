"""Operation echoes: capture chosen typed signals per operation and persist one echo of them when it is finalised.

``OperationEchoMaker`` (or ``enable_operation_echoing``) watches a ``TypedSignalSink`` and a coordinator's
``operation_finalized``; ``OperationEchoAtom`` persists the resulting ``OperationEchoEntry`` records.
"""

from __future__ import annotations

from ._echo import (
    OperationEchoAtom as OperationEchoAtom,
    OperationEchoCapture as OperationEchoCapture,
    OperationEchoEntry as OperationEchoEntry,
    OperationEchoMaker as OperationEchoMaker,
    OperationEchoMakerOptions as OperationEchoMakerOptions,
    OperationFinalizer as OperationFinalizer,
    enable_operation_echoing as enable_operation_echoing,
)

__all__ = (
    "OperationEchoAtom",
    "OperationEchoCapture",
    "OperationEchoEntry",
    "OperationEchoMaker",
    "OperationEchoMakerOptions",
    "OperationFinalizer",
    "enable_operation_echoing",
)
