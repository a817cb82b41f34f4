"""The ``equitune_vit`` classifier type: invariant logits on a named batch for every rot90 element, the same
parameters as the plain ViT, and built by ``train_classifier``'s config registry."""

import equinox as eqx
import haliax as hax
import jax
import jax.numpy as jnp
import numpy as np

from common_jax.launch import parse_config
from equitune_jax.main.train_classifier import TrainClassifierConfig

from .test_configs import CONFIGS, _count


def test_equitune_vit_is_invariant_with_the_vit_parameters():
    config = parse_config(TrainClassifierConfig, CONFIGS / "equitune" / "vit_rot90_mnist.yaml",
                          ["--model.num_layers", "1", "--model.hidden_dim", "16", "--model.mlp_dim", "16"])
    model = config.model.build(key=jax.random.PRNGKey(0))
    assert model.forward_passes == 4
    assert _count(model) == _count(model.equitune.model.model)  # the wrapper adds no parameters
    images = jnp.asarray(np.random.default_rng(0).normal(size=(3, 28, 28, 1)), jnp.float32)
    named = lambda x: hax.named(x, ("batch", "height", "width", "channel"))
    call = eqx.filter_jit(lambda m, x: m(named(x)).array)
    logits = call(model, images)
    assert logits.shape == (3, 10)
    for k in range(4):
        np.testing.assert_allclose(call(model, jnp.rot90(images, k, axes=(1, 2))), logits, atol=1e-5)
    plain = model.equitune.model
    gaps = [float(jnp.max(jnp.abs(jax.vmap(plain)(jnp.rot90(images, 1, axes=(1, 2))) - jax.vmap(plain)(images))))]
    assert max(gaps) > 1e-4  # the ViT alone is not invariant
