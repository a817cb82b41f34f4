"""On 8 fake CPU devices: parameters are really sharded (FSDP on embed, tensor parallel on heads/mlp), and one
sharded levanter train step equals the same step computed on a single device."""

import dataclasses
import functools

import jax
import levanter
from levanter.trainer import Trainer
from levanter.utils.mesh import MeshConfig

from common_jax.data.images import EpochShuffledDataset
from common_jax.launch import parse_config
from common_jax.main.train_classifier import TrainClassifierConfig
from common_jax.training.classification import classification_loss

from .runs import CONFIGS, assert_single_device_step_matches, numpy_tree, run_overrides


def test_sharded_parameters_and_step_match_single_device(in_tmp):
    assert jax.device_count() == 8, "tests/conftest.py should have created 8 fake CPU devices"
    # Adam's epsilon is raised from 1e-8 so that parameters with ~zero gradient (the key bias: softmax is invariant
    # to it) are not updated by lr * noise / |noise|, which no two reduction orders agree on.
    overrides = run_overrides("sharded", 1, in_tmp) + [
        "--model.num_layers", "2", "--trainer.train_batch_size", "16", "--optimizer.epsilon", "1e-4"
    ]
    config = parse_config(TrainClassifierConfig, CONFIGS / "common/vit_mnist_tiny.yaml", overrides)
    config.trainer = dataclasses.replace(config.trainer, mesh=MeshConfig(axes={"data": 4, "model": 2}))
    levanter.initialize(config)
    optimizer = config.optimizer.build(config.trainer.num_train_steps)
    loss_fn = functools.partial(classification_loss, label_smoothing=0.0)
    splits = config.data.load()

    with Trainer(config.trainer, optimizer, loss_fn) as trainer:
        model_key, training_key = jax.random.split(jax.random.PRNGKey(0))
        state = trainer.initial_state(training_key, model_init=lambda: config.model.build(key=model_key))

        fc1 = state.model.blocks.stacked.mlp.fc1.weight  # [layers, mlp, embed]
        assert [ax.name for ax in fc1.axes] == ["layers", "mlp", "embed"]
        assert tuple(fc1.array.sharding.spec) == (None, "model", "data")
        assert fc1.array.addressable_shards[0].data.shape == (2, 128 // 2, 64 // 4)
        q = state.model.blocks.stacked.attn.q_proj.weight  # [layers, heads, head_size, embed]
        assert q.array.sharding.spec[1] == "model" and q.array.sharding.spec[3] == "data"

        batch = next(iter(trainer.data_loader(EpochShuffledDataset(splits.train, 0))))
        assert not batch.image.array.sharding.is_fully_replicated  # the batch is split over the data axis
        model_before, batch_host = numpy_tree(state.model), numpy_tree(batch)
        info = trainer.train_step(state, batch)
        sharded_loss, sharded_after = info.loss, numpy_tree(info.state.model)

    assert_single_device_step_matches(optimizer, loss_fn, model_before, batch_host, sharded_loss, sharded_after)
