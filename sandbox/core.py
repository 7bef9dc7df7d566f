"""The pieces one sandbox instance is made of, bundled for the handlers."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

from certsms.sandbox.blocking import SpamGuard
from certsms.sandbox.callbacks import CallbackDispatcher
from certsms.sandbox.clock import Clock
from certsms.sandbox.config import SandboxConfig
from certsms.sandbox.requestlog import RequestLog
from certsms.sandbox.state import SandboxState


@dataclass
class SandboxCore:
    """Live config, the start config, clock, state, callbacks, spam guard, log."""

    config: SandboxConfig
    start_config: SandboxConfig
    clock: Clock
    state: SandboxState
    callbacks: CallbackDispatcher
    guard: SpamGuard
    log: RequestLog
    rng: random.Random
    stopping: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def create(cls, config: SandboxConfig, clock: Clock | None = None) -> SandboxCore:
        """A fresh sandbox around ``config`` (which becomes the live, mutable config)."""
        clock = clock or Clock()
        return cls(
            config=config,
            start_config=config.copy(),
            clock=clock,
            state=SandboxState(config, clock),
            callbacks=CallbackDispatcher(config),
            guard=SpamGuard(config, clock),
            log=RequestLog(config),
            rng=random.Random(config.fault_seed),
        )

    def reset(self) -> None:
        """Back to the start: config, clock offset, data, log, blocks, counters."""
        with self.state.lock:
            fresh = self.start_config.copy()
            for name in fresh.__dataclass_fields__:
                setattr(self.config, name, getattr(fresh, name))
            self.clock.reset()
            self.state.reset_data()
            self.log.clear()
            self.guard.reset()
            self.callbacks.clear()
            self.rng.seed(self.config.fault_seed)

    def reseed(self) -> None:
        """Re-seed the fault dice after a config change that set ``fault_seed``."""
        self.rng.seed(self.config.fault_seed)
