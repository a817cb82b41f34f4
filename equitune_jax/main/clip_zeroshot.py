"""CLIP zero-shot robustness to rot90 × vflip (spec §6.4): vanilla (1 pass), equitune over D4 (8, softmax
mean), equizero (class-wise max), multi-equitune (seeded template canonicaliser, then rot90 4 + vflip 2 = 6
passes) and multi-equizero (class-wise max over the 6 branches); top-1 accuracy and wall time per method
and test transform.

    python -m equitune_jax.main.clip_zeroshot --config_path configs/equitune/clip_zeroshot.yaml

Runs on real weights (``model_path: openai/clip-vit-base-patch32``) when available; the tests use a tiny
random CLIP saved in the HF layout. Images default to the embedded mnist10k test digits.
"""

import logging
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import levanter
import numpy as np

from common_jax.data.images import load_mnist10k
from common_jax.launch import run_main
from common_jax.training.run_setup import write_run_results

from .. import groups as G
from ..config import ClipZeroshotConfig
from ..invariant_maps import TemplateCanonicalizer
from ..models.flax_hf import FlaxClipImageClassifier
from ..wrappers import equitune, equizero, multi_equitune

logger = logging.getLogger(__name__)
CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], np.float32)
TRANSFORMS = {"none": (0, 0), "flip": (1, 0), "rot90": (0, 1), "rot90_flip": (1, 1)}  # D4(vflip) elements


def clip_pixels(images_uint8: np.ndarray, size: int) -> np.ndarray:
    """uint8 [N, H, W, C] -> CLIP-normalised float32 [N, 3, size, size] (grey replicated to RGB)."""
    x = images_uint8.astype(np.float32) / 255.0
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    x = np.asarray(jax.image.resize(x, (x.shape[0], size, size, 3), "bilinear"))
    return np.moveaxis((x - CLIP_MEAN) / CLIP_STD, -1, 1)


def class_embeddings(model, params, tokenizer, class_names, templates) -> jnp.ndarray:
    """[classes, dim]: per class, the mean of the normalised template embeddings, renormalised."""
    rows = []
    for name in class_names:
        tokens = tokenizer([t.format(name) for t in templates], padding=True, return_tensors="np")
        emb = model.get_text_features(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"],
                                      params=params, train=False)
        emb = emb / jnp.linalg.norm(emb, axis=-1, keepdims=True)
        mean = emb.mean(0)
        rows.append(mean / jnp.linalg.norm(mean))
    return jnp.stack(rows)


def build_methods(classifier, config: ClipZeroshotConfig, image_shape) -> dict:
    d4 = G.d4("vflip", axes=(-2, -1))
    canon = TemplateCanonicalizer(d4, tuple(image_shape), seed=config.canon_seed)
    branches = [G.rot90(axes=(-2, -1)), G.vflip(axes=(-2, -1))]
    all_methods = {
        "vanilla": classifier,
        "equitune": equitune(classifier, d4, aggregate="softmax"),
        "equizero": equizero(classifier, d4, "entropy", mode=config.equizero_mode, aggregate="softmax"),
        "multi_equitune": multi_equitune(classifier, branches, [canon, canon], aggregate="softmax",
                                         allow_noncommuting=True),
        "multi_equizero": multi_equitune(classifier, branches, [canon, canon], aggregate="softmax",
                                         allow_noncommuting=True, reduce="classwise_max"),
    }
    return {name: all_methods[name] for name in config.methods}


def transformed(pixels: np.ndarray, transform: str, seed: int) -> np.ndarray:
    """The test images under ``transform``; ``random`` draws one of the four per image."""
    d4 = G.d4("vflip", axes=(-2, -1))
    if transform != "random":
        return np.asarray(d4.act_input(TRANSFORMS[transform], pixels))
    picks = np.random.default_rng(seed).integers(4, size=len(pixels))
    out = pixels.copy()
    for k, g in enumerate(TRANSFORMS.values()):
        out[picks == k] = np.asarray(d4.act_input(g, pixels[picks == k]))
    return out


def accuracy(model, pixels, labels, batch_size) -> float:
    predict = eqx.filter_jit(lambda m, x: jnp.argmax(jax.vmap(lambda e: m(e))(x), -1))
    hits = sum(int(jnp.sum(predict(model, pixels[i:i + batch_size]) == labels[i:i + batch_size]))
               for i in range(0, len(labels), batch_size))
    return hits / len(labels)


def main(config: ClipZeroshotConfig) -> dict:
    from transformers import CLIPTokenizer, FlaxCLIPModel

    levanter.initialize(config)
    model = FlaxCLIPModel.from_pretrained(config.model_path)
    tokenizer = CLIPTokenizer.from_pretrained(config.tokenizer_path or config.model_path)
    size = model.config.vision_config.image_size
    images, labels = load_mnist10k()
    images, labels = images[8000:][: config.max_images], labels[8000:][: config.max_images].astype(np.int32)
    pixels = clip_pixels(images, size)
    classifier = FlaxClipImageClassifier(model.params, class_embeddings(model, model.params, tokenizer,
                                                                         config.class_names, config.templates),
                                         config.logit_factor, model)
    methods = build_methods(classifier, config, pixels.shape[1:])
    results = {"images": len(labels), "methods": {}}
    for name, wrapped in methods.items():
        row = {"forward_passes": int(getattr(wrapped, "forward_passes", 1))}
        for transform in config.transforms:
            start = time.time()
            row[transform] = accuracy(wrapped, transformed(pixels, transform, config.seed), labels, config.batch_size)
            row[f"{transform}_seconds"] = round(time.time() - start, 2)
        results["methods"][name] = row
        logger.info("clip_zeroshot %s: %s", name, row)
    write_run_results(config.trainer, results)
    return results


if __name__ == "__main__":
    run_main(main)
