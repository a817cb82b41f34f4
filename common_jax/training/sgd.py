"""SGD with momentum as a levanter ``OptimizerConfig`` (``type: sgd``), built like levanter's ``AdamConfig``.

Importing this module registers the choice. It follows ``torch.optim.SGD(lr, momentum, weight_decay)``: the L2
term ``weight_decay · θ`` is added to the gradient (coupled decay, ``optax.add_decayed_weights`` before the
momentum trace), then ``buf ← momentum · buf + g`` and ``θ ← θ − lr · buf``. The learning rate follows levanter's
schedule (``lr_schedule``, ``warmup``, ...); ``default_weight_decay_mask: false`` decays every parameter as torch
does (levanter's default mask skips biases, norms and embeddings).
"""

from dataclasses import dataclass

import optax
from levanter.optim import OptimizerConfig


@OptimizerConfig.register_subclass("sgd")
@dataclass(frozen=True)
class SgdConfig(OptimizerConfig):
    momentum: float = 0.9  # 0: plain SGD
    nesterov: bool = False
    max_grad_norm: float | None = None

    def __post_init__(self):
        if not 0 <= self.momentum < 1:
            raise ValueError(f"optimizer.momentum must be in [0, 1), got {self.momentum}")
        if self.nesterov and self.momentum == 0:
            raise ValueError("optimizer.nesterov needs optimizer.momentum > 0")

    def build(self, num_train_steps: int):
        # the indirection makes it work with optax.inject_hyperparams, so the learning rate is logged
        def _optimizer(learning_rate):
            components = []
            if self.max_grad_norm:
                components.append(optax.clip_by_global_norm(self.max_grad_norm))
            if self.weight_decay > 0:
                components.append(optax.add_decayed_weights(self.weight_decay, self.build_weight_decay_mask()))
            components.append(optax.sgd(learning_rate, momentum=self.momentum or None, nesterov=self.nesterov))
            return optax.chain(*components)

        return optax.inject_hyperparams(_optimizer)(learning_rate=self.lr_scheduler(num_train_steps))
