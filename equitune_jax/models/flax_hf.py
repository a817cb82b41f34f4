"""Equinox views of ``transformers`` Flax models, so the wrappers can vmap them over an orbit.

The parameters are a trainable pytree; the Flax model object (architecture) is static.
"""

import equinox as eqx
import jax
import jax.numpy as jnp


class FlaxCausalLM(eqx.Module):
    """``ids [T] -> logits [T, vocab]`` of a Flax causal LM (e.g. ``FlaxGPT2LMHeadModel``)."""

    params: dict
    model: object = eqx.field(static=True)

    def __call__(self, ids, *, key=None):
        return self.model(ids[None], params=self.params, train=False).logits[0]


class FlaxClipImageClassifier(eqx.Module):
    """Zero-shot CLIP: ``image [C, H, W] -> logit_factor · cos(image embedding, class text embeddings)``.

    ``class_embeddings`` [classes, dim] are the normalised, template-averaged, renormalised text embeddings.
    """

    params: dict
    class_embeddings: jax.Array
    logit_factor: float = eqx.field(static=True)
    model: object = eqx.field(static=True)

    def __call__(self, pixels, *, key=None):
        features = self.model.get_image_features(pixel_values=pixels[None], params=self.params, train=False)[0]
        features = features / jnp.linalg.norm(features)
        return self.logit_factor * self.class_embeddings @ features
