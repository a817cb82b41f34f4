"""An Equinox view of ``transformers``' Flax CLIP, so the wrappers can vmap it over an orbit.

CLIP stays on the Flax model (``transformers`` < 5, pinned): the project's HF importer (``common_jax.hf``) covers ViT,
BERT and GPT-2, not CLIP's two towers. The parameters are a trainable pytree; the Flax model object is static.
"""

import equinox as eqx
import jax
import jax.numpy as jnp


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
