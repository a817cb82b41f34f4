"""Launch errors read well: one short message naming the file or field and the fix, exit status 2, no traceback
(``common_jax.launch.run_main``, the ``__main__`` line of every entry point)."""

import subprocess
import sys
from pathlib import Path

import pytest

from common_jax.launch import ConfigError, run_main
from common_jax.main import train_classifier

ROOT = Path(__file__).resolve().parents[2]
VIT_YAML = ROOT / "configs" / "common" / "vit_mnist_tiny.yaml"


def _launch(argv, capsys, main=train_classifier.main) -> str:
    with pytest.raises(SystemExit) as exit_info:
        run_main(main, argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" not in err and len(err.splitlines()) == 2, err
    assert "--debug" in err.splitlines()[1]
    return err.splitlines()[0]


def _yaml(tmp_path, text: str) -> str:
    path = tmp_path / "launch.yaml"
    path.write_text(text)
    return str(path)


def test_missing_config_file_names_it_and_suggests_the_close_one(capsys):
    message = _launch(["--config_path", "configs/common/vit_mnst_tiny.yaml"], capsys)
    assert "configs/common/vit_mnst_tiny.yaml does not exist" in message
    assert "vit_mnist_tiny.yaml" in message.split("Did you mean")[1]


def test_folder_and_invalid_yaml(tmp_path, capsys):
    assert "is a folder" in _launch(["--config_path", str(ROOT / "configs" / "common")], capsys)
    message = _launch(["--config_path", _yaml(tmp_path, "model:\n  type: vit\n  hidden_dim: [64\n")], capsys)
    assert "is not valid YAML" in message and "line" in message
    assert "must hold a mapping" in _launch(["--config_path", _yaml(tmp_path, "- 1\n- 2\n")], capsys)


def test_unknown_key_in_the_file_and_on_the_command_line(tmp_path, capsys):
    message = _launch(["--config_path", _yaml(tmp_path, "model:\n  type: vit\n  hiden_dim: 64\n")], capsys)
    assert "unknown field model.hiden_dim" in message and "did you mean model.hidden_dim?" in message
    message = _launch(["--config_path", str(VIT_YAML), "--trainr.seed", "3"], capsys)
    assert "--trainr.seed" in message and "did you mean trainer?" in message


def test_wrong_type_names_the_field(capsys):
    message = _launch(["--config_path", str(VIT_YAML), "--model.hidden_dim", "wide"], capsys)
    assert "model.hidden_dim" in message and "int" in message


def test_impossible_shape_names_the_fields(capsys):
    message = _launch(["--config_path", str(VIT_YAML), "--model.hidden_dim", "30"], capsys)
    assert "model.num_heads" in message and "model.hidden_dim" in message


def test_config_error_raised_by_a_main_and_debug_shows_the_traceback(capsys):
    def main(config: train_classifier.TrainClassifierConfig):
        raise ConfigError("model.image_size is 28 but the data's images are 32x32")

    message = _launch(["--config_path", str(VIT_YAML)], capsys, main)
    assert message.endswith("model.image_size is 28 but the data's images are 32x32")
    with pytest.raises(ConfigError):
        run_main(main, ["--config_path", str(VIT_YAML), "--debug"])


@pytest.mark.parametrize("module, argv, expected", [
    ("common_jax.main.train_classifier", ["--config_path", "configs/common/missing.yaml"], "does not exist"),
    ("crate_jax.main.train", ["--config_path", "configs/crate/tiny_mnist.yaml", "--model.etaa", "0.2"],
     "did you mean model.eta?"),
])
def test_real_entry_points_exit_2_without_traceback(module, argv, expected):
    result = subprocess.run([sys.executable, "-m", module, *argv], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback (most recent call last)" not in result.stderr and expected in result.stderr, result.stderr[-2000:]
