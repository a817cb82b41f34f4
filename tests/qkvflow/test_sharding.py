"""On 8 fake CPU devices (mesh data=4 x model=2): levanter's default FSDP/TP mapping shards DiffEqFormer's
hypernetwork (embed over data, mlp and heads over model), and one sharded train step of the tiny config equals
the same step computed on a single device."""

import dataclasses

import jax
import levanter
from haliax import Axis
from haliax.partitioning import round_axis_for_partitioning
from levanter.trainer import Trainer
from levanter.utils.mesh import MeshConfig

from common_jax.launch import parse_config
from qkvflow_jax.main.train import TrainLmConfig
from tests.common.runs import CONFIGS, assert_single_device_step_matches, numpy_tree, run_overrides


def _loss(model, example, *, key=None):
    return model.compute_next_token_loss(example, key=key)


def test_sharded_diffeqformer_step_matches_single_device(in_tmp):
    assert jax.device_count() == 8, "tests/conftest.py should have created 8 fake CPU devices"
    # Adam's epsilon is raised so that parameters with ~zero gradient are not moved by lr * noise / |noise|,
    # which no two reduction orders agree on (as in tests/common/test_sharding.py).
    overrides = run_overrides("sharded", 1, in_tmp) + [
        "--model.num_layers", "2", "--model.max_seq_len", "32", "--trainer.train_batch_size", "8",
        "--optimizer.epsilon", "1e-4", "--optimizer.warmup", "0", "--optimizer.lr_schedule", "constant"]
    config = parse_config(TrainLmConfig, CONFIGS / "qkvflow/tiny.yaml", overrides)
    config.trainer = dataclasses.replace(config.trainer, mesh=MeshConfig(axes={"data": 4, "model": 2}))
    levanter.initialize(config)
    data = config.data.lm_data_config()
    optimizer = config.optimizer.build(config.trainer.num_train_steps)

    with Trainer(config.trainer, optimizer, _loss) as trainer:
        Vocab = round_axis_for_partitioning(Axis("vocab", len(data.the_tokenizer)),
                                            config.trainer.parameter_axis_mapping)
        data_key, model_key, training_key = jax.random.split(jax.random.PRNGKey(0), 3)
        state = trainer.initial_state(training_key, model_init=lambda: config.model.build(Vocab, key=model_key))

        fc_a = state.model.field.fc.A  # [time_embed, embed, mlp]
        assert [ax.name for ax in fc_a.axes] == ["time_embed", "embed", "mlp"]
        assert tuple(fc_a.array.sharding.spec) == (None, "data", "model")
        assert fc_a.array.addressable_shards[0].data.shape == (8, 64 // 4, 256 // 2)
        qkv_a = state.model.field.qkv.A
        heads = [ax.name for ax in qkv_a.axes].index("heads")
        assert qkv_a.array.sharding.spec[heads] == "model"

        Pos = config.model.max_Pos
        train_set = data.train_set(Pos, config.trainer.batch_schedule, key=data_key)
        batch = next(iter(trainer.data_loader(train_set)))
        assert not batch.tokens.array.sharding.is_fully_replicated  # the batch is split over the data axis
        model_before, batch_host = numpy_tree(state.model), numpy_tree(batch)
        info = trainer.train_step(state, batch)
        sharded_loss, sharded_after = info.loss, numpy_tree(info.state.model)

    with_aux = lambda model, example: (_loss(model, example).scalar(), None)  # noqa: E731  (the helper expects aux)
    assert_single_device_step_matches(optimizer, with_aux, model_before, batch_host, sharded_loss, sharded_after)
