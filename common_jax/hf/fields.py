"""Reading the fields of a checkpoint config that the project configs express, refusing the ones they cannot."""

from .errors import UnsupportedConfigError

# HF ``hidden_act`` names -> the project's activation names (common_jax.models.mlp.ACTIVATIONS). ``gelu_new`` and
# ``gelu_pytorch_tanh`` are both the tanh approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
FROM_HF_ACTIVATION = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh",
                      "quick_gelu": "quick_gelu", "relu": "relu"}
TO_HF_ACTIVATION = {"gelu": "gelu", "gelu_tanh": "gelu_pytorch_tanh", "quick_gelu": "quick_gelu", "relu": "relu"}


def activation_from_hf(field: str, name) -> str:
    """The project activation of the HF activation ``name`` read from ``field``."""
    if name not in FROM_HF_ACTIVATION:
        raise UnsupportedConfigError(field, name, f"supported activations are {tuple(FROM_HF_ACTIVATION)}")
    return FROM_HF_ACTIVATION[name]


def square(field: str, value) -> int:
    """``value`` as one int: an int, or a pair of equal ints (the project's images and patches are square)."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or value[0] != value[1]:
            raise UnsupportedConfigError(field, value, "the project ViT needs square images and patches")
        value = value[0]
    return int(value)


def one_dropout(rates: dict[str, float]) -> float:
    """The single dropout rate of the project models, from checkpoint fields that must agree (``name -> rate``);
    the error names the first field that differs from the first one."""
    first = next(iter(rates.values()))
    differing = [name for name, rate in rates.items() if rate != first]
    if differing:
        name = differing[0]
        raise UnsupportedConfigError(name, rates[name], f"the project model has one dropout rate for all of {rates}")
    return float(first)


def require(field: str, value, expected, why: str) -> None:
    """:class:`UnsupportedConfigError` naming ``field`` unless ``value == expected``."""
    if value != expected:
        raise UnsupportedConfigError(field, value, why)
