"""Reading models back from checkpoints: bad paths fail clearly and write nothing."""

import equinox as eqx
import jax
import pytest

from common_jax.checkpoints import load_model, resolve_checkpoint
from common_jax.models import ViTConfig


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_checkpoint(str(tmp_path / "nowhere"))


def test_folder_without_checkpoint_is_a_clear_error_and_is_left_untouched(tmp_path):
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    abstract = eqx.filter_eval_shape(lambda: ViTConfig().build(key=jax.random.PRNGKey(0)))
    with pytest.raises(FileNotFoundError, match="no complete levanter checkpoint"):
        load_model(abstract, str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
