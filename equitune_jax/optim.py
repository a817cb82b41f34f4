"""torch's ``Adam`` with per-module gradient clipping as a levanter ``OptimizerConfig`` (``type: torch_adam``).

The SCAN reference trains with two ``torch.optim.Adam`` (one for the encoder, one for the decoder), each after
``clip_grad_norm_(module.parameters(), 5.)`` on its own module, and fine-tunes with ``weight_decay=1e-4``, which in
torch's Adam is an L2 term added to the gradient (coupled), not AdamW's decoupled decay. This config builds exactly
that from optax pieces:

1. ``clip_norm`` (if set): clip the global norm of the gradient, separately within each of ``clip_groups`` (the
   parameters whose path passes through a module field of that name, e.g. ``encoder`` / ``decoder``; the remaining
   parameters form one more group); without ``clip_groups`` one global clip;
2. ``weight_decay`` > 0: ``g += weight_decay · θ`` on every parameter (torch decays all of them);
3. Adam moments (``beta1``, ``beta2``, ``epsilon`` added to the square root, torch's convention) and the levanter
   learning-rate schedule.

Importing this module registers the choice.
"""

from dataclasses import dataclass

import jax
import optax
from jax.tree_util import GetAttrKey
from levanter.optim import OptimizerConfig

OTHER_GROUP = "other"


def group_labels(params, groups: tuple[str, ...]):
    """Each parameter's clip group: the first of ``groups`` that names a module field on its path, else 'other'."""

    def label(path, _leaf):
        names = [k.name for k in path if isinstance(k, GetAttrKey)]
        return next((g for g in groups if g in names), OTHER_GROUP)

    return jax.tree_util.tree_map_with_path(label, params)


@OptimizerConfig.register_subclass("torch_adam")
@dataclass(frozen=True)
class TorchAdamConfig(OptimizerConfig):
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    clip_norm: float | None = None
    clip_groups: tuple[str, ...] = ()

    def __post_init__(self):
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ValueError(f"optimizer.beta1/beta2 must be in [0, 1), got {self.beta1}, {self.beta2}")
        if self.clip_norm is not None and self.clip_norm <= 0:
            raise ValueError(f"optimizer.clip_norm must be positive or null, got {self.clip_norm}")
        if self.clip_groups and self.clip_norm is None:
            raise ValueError("optimizer.clip_groups needs optimizer.clip_norm")
        if OTHER_GROUP in self.clip_groups:
            raise ValueError(f"optimizer.clip_groups: {OTHER_GROUP!r} is reserved for the parameters of no group")

    def build(self, num_train_steps: int):
        def _optimizer(learning_rate):
            components = []
            if self.clip_norm is not None:
                if self.clip_groups:
                    clip = optax.clip_by_global_norm(self.clip_norm)
                    transforms = {name: clip for name in (*self.clip_groups, OTHER_GROUP)}
                    components.append(optax.multi_transform(transforms,
                                                            lambda p: group_labels(p, tuple(self.clip_groups))))
                else:
                    components.append(optax.clip_by_global_norm(self.clip_norm))
            if self.weight_decay > 0:
                components.append(optax.add_decayed_weights(self.weight_decay))
            components.append(optax.scale_by_adam(self.beta1, self.beta2, self.epsilon))
            components.append(optax.scale_by_learning_rate(learning_rate))
            return optax.chain(*components)

        return optax.inject_hyperparams(_optimizer)(learning_rate=self.lr_scheduler(num_train_steps))
