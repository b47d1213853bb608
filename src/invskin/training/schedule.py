"""Loss weights as functions of the training step: warm-ups and decays plug in here, not in models.

A model returns a dict of named unweighted losses; the trainer multiplies each by
``LossWeights.weight(name, step)`` and sums. A name with no entry has weight 0 (logged, not optimised).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Ramp:
    """Weight ``start`` until ``begin``, linear to ``end`` at ``finish``, then ``end``."""

    start: float
    end: float
    begin: int = 0
    finish: int = 0

    def __call__(self, step: int) -> float:
        if step <= self.begin or self.finish <= self.begin:
            return self.start if step <= self.begin else self.end
        if step >= self.finish:
            return self.end
        t = (step - self.begin) / (self.finish - self.begin)
        return self.start + t * (self.end - self.start)


@dataclass(frozen=True)
class LossWeights:
    """A weight schedule per named loss."""

    schedules: dict[str, Ramp] = field(default_factory=dict)

    def weight(self, name: str, step: int) -> float:
        ramp = self.schedules.get(name)
        return 0.0 if ramp is None else ramp(step)

    def to_json(self) -> dict:
        return {k: vars(v) for k, v in self.schedules.items()}

    @classmethod
    def from_json(cls, data: dict) -> LossWeights:
        return cls({k: Ramp(**v) for k, v in data.items()})
