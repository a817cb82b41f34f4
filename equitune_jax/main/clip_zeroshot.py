"""CLIP zero-shot robustness to rot90 × vflip (spec §6.4): vanilla (1 pass), equitune over ``group`` (softmax mean;
8 passes over D4), equizero (class-wise max), multi-equitune (seeded template canonicaliser, then rot90 4 + vflip 2 =
6 passes, ``branch_weighting``) and multi-equizero (class-wise max over the 6 branches); top-1 accuracy and wall time
per method and test transform.

    python -m equitune_jax.main.clip_zeroshot --config_path configs/equitune/clip_zeroshot.yaml    # mnist10k digits
    python -m equitune_jax.main.clip_zeroshot --config_path configs/equitune/clip_cifar100.yaml    # the reference's
    python -m equitune_jax.main.clip_zeroshot --config_path configs/equitune/clip_imagenetv2.yaml  # the reference's

The model is ``transformers``' Flax CLIP (the ViT towers; the reference's ResNet towers have no transformers port).
Images stream in chunks of ``batch_size``; every method sees the same transformed images (one seeded draw sequence per
transform). Tests use a tiny random CLIP saved in the HF layout.
"""

import logging
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import levanter
import numpy as np

from common_jax.launch import run_main
from common_jax.training.run_setup import write_run_results

from .. import groups as G
from ..config import ClipZeroshotConfig
from ..data.clip_data import CLIP_GROUPS, transform_pixels
from ..invariant_maps import TemplateCanonicalizer
from ..models.flax_hf import FlaxClipImageClassifier
from ..wrappers import equitune, equizero, multi_equitune

logger = logging.getLogger(__name__)
CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], np.float32)


def clip_pixels(images_uint8: np.ndarray, size: int) -> np.ndarray:
    """Small uint8 [N, H, W, C] images (the mnist10k digits) -> CLIP-normalised float32 [N, 3, size, size] (grey
    replicated to RGB, bilinear upscaling)."""
    x = images_uint8.astype(np.float32) / 255.0
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    x = np.asarray(jax.image.resize(x, (x.shape[0], size, size, 3), "bilinear"))
    return np.moveaxis((x - CLIP_MEAN) / CLIP_STD, -1, 1)


def image_processor(config: ClipZeroshotConfig, size: int):
    """CLIP's preprocessing (resize the short side to ``size`` bicubic, centre crop, normalise), as ``clip.load``'s
    ``preprocess``: the model folder's ``preprocessor_config.json`` if it has one, else the default CLIP processor."""
    from transformers import CLIPImageProcessor

    folder = Path(config.model_path)
    if (folder / "preprocessor_config.json").exists() or not folder.exists():
        return CLIPImageProcessor.from_pretrained(config.model_path)
    return CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})


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
    group = CLIP_GROUPS[config.group]()
    canon = TemplateCanonicalizer(d4, tuple(image_shape), seed=config.canon_seed)
    branches = [G.rot90(axes=(-2, -1)), G.vflip(axes=(-2, -1))]
    multi = {"aggregate": "softmax", "allow_noncommuting": True, "branch_weighting": config.branch_weighting}
    all_methods = {
        "vanilla": classifier,
        "equitune": equitune(classifier, group, aggregate="softmax"),
        "equizero": equizero(classifier, group, "entropy", mode=config.equizero_mode, aggregate="softmax"),
        "multi_equitune": multi_equitune(classifier, branches, [canon, canon], **multi),
        "multi_equizero": multi_equitune(classifier, branches, [canon, canon], reduce="classwise_max", **multi),
    }
    return {name: all_methods[name] for name in config.methods}


@eqx.filter_jit
def _predict(model, pixels):
    return jnp.argmax(jax.vmap(lambda e: model(e))(pixels), -1)


def main(config: ClipZeroshotConfig) -> dict:
    from transformers import CLIPTokenizer, FlaxCLIPModel

    levanter.initialize(config)
    model = FlaxCLIPModel.from_pretrained(config.model_path)
    tokenizer = CLIPTokenizer.from_pretrained(config.tokenizer_path or config.model_path)
    size = model.config.vision_config.image_size
    class_names, templates = config.prompts()
    classifier = FlaxClipImageClassifier(model.params, class_embeddings(model, model.params, tokenizer, class_names,
                                                                         templates), config.logit_factor, model)
    methods = build_methods(classifier, config, (3, size, size))
    processor = None if config.data.source == "mnist10k" else image_processor(config, size)
    rngs = {t: np.random.default_rng([config.seed, k]) for k, t in enumerate(config.transforms)}
    hits = {m: {t: 0 for t in config.transforms} for m in methods}
    seconds = {m: {t: 0.0 for t in config.transforms} for m in methods}
    count = 0
    for images, labels in config.data.images(config.batch_size):
        if processor is None:
            pixels = clip_pixels(np.stack(images), size)
        else:
            pixels = np.asarray(processor(images=images, return_tensors="np")["pixel_values"], np.float32)
        count += len(labels)
        for transform in config.transforms:
            moved = jnp.asarray(transform_pixels(pixels, transform, config.transform_draw, config.transform_batch,
                                                 rngs[transform]))
            for name, wrapped in methods.items():
                start = time.time()
                hits[name][transform] += int(jnp.sum(_predict(wrapped, moved) == jnp.asarray(labels)))
                seconds[name][transform] += time.time() - start
    if not count:
        raise ValueError("data: no images were read")
    results = {"images": count, "classes": len(class_names), "templates": len(templates),
               "transform_draw": config.transform_draw, "methods": {}}
    for name, wrapped in methods.items():
        row = {"forward_passes": int(getattr(wrapped, "forward_passes", 1))}
        for transform in config.transforms:
            row[transform] = hits[name][transform] / count
            row[f"{transform}_seconds"] = round(seconds[name][transform], 2)
        results["methods"][name] = row
        logger.info("clip_zeroshot %s: %s", name, row)
    write_run_results(config.trainer, results)
    return results


if __name__ == "__main__":
    run_main(main)
