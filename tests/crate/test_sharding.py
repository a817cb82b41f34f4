"""On 8 fake CPU devices: CRATE's parameters are sharded (FSDP on embed, heads over the model axis) and one
sharded levanter train step equals the same step on a single device (spec crate.md §8.9)."""

import dataclasses
import functools

import jax
import levanter
from levanter.optim import AdamConfig
from levanter.trainer import Trainer
from levanter.utils.mesh import MeshConfig

from common_jax.data.images import EpochShuffledDataset
from common_jax.launch import parse_config
from common_jax.training.classification import classification_loss
from crate_jax.main.train import TrainClassifierConfig
from tests.common.runs import assert_single_device_step_matches, numpy_tree, run_overrides

from .test_configs import CONFIGS


def test_sharded_step_matches_single_device(in_tmp):
    assert jax.device_count() == 8, "tests/conftest.py should have created 8 fake CPU devices"
    overrides = run_overrides("sharded", 1, in_tmp) + ["--model.num_layers", "1", "--trainer.train_batch_size", "16"]
    config = parse_config(TrainClassifierConfig, CONFIGS / "tiny_mnist.yaml", overrides)
    config.trainer = dataclasses.replace(config.trainer, mesh=MeshConfig(axes={"data": 4, "model": 2}))
    # Adam with a large epsilon: Lion's sign() would turn reduction-order noise in ~zero gradients into +-lr
    config.optimizer = AdamConfig(learning_rate=1e-3, weight_decay=0.0, epsilon=1e-4)
    levanter.initialize(config)
    optimizer = config.optimizer.build(config.trainer.num_train_steps)
    loss_fn = functools.partial(classification_loss, label_smoothing=0.1)
    splits = config.data.load()

    with Trainer(config.trainer, optimizer, loss_fn) as trainer:
        model_key, training_key = jax.random.split(jax.random.PRNGKey(0))
        state = trainer.initial_state(training_key, model_init=lambda: config.model.build(key=model_key))
        U = state.model.layers.stacked.mssa.U.weight  # [layers, heads, head_size, embed]
        assert tuple(U.array.sharding.spec) == (None, "model", None, "data")
        D = state.model.layers.stacked.ista.dictionary  # [layers, embed, atoms]
        assert D.array.addressable_shards[0].data.shape == (1, 64 // 4, 64)

        batch = next(iter(trainer.data_loader(EpochShuffledDataset(splits.train, 0))))
        model_before, batch_host = numpy_tree(state.model), numpy_tree(batch)
        info = trainer.train_step(state, batch)
        sharded_loss, sharded_after = info.loss, numpy_tree(info.state.model)

    assert_single_device_step_matches(optimizer, loss_fn, model_before, batch_host, sharded_loss, sharded_after)
