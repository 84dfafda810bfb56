"""Pipeline stages: one function per step, `(event, ports) -> StageResult`. Ports only."""

from healthpipe.stages.base import Ports, StageResult

__all__ = ["Ports", "StageResult"]
