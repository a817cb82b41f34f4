"""The two ways a checkpoint can fail to become a project model, each naming what to look at."""


class UnsupportedConfigError(ValueError):
    """A checkpoint config field (or a project config field, on export) that the target model cannot express.

    ``field`` is the field's name as the config spells it (e.g. ``"qkv_bias"``, ``"init_values"``)."""

    def __init__(self, field: str, value, why: str):
        self.field = field
        super().__init__(f"config field {field}={value!r} cannot be expressed: {why}")


class TensorMismatchError(ValueError):
    """A missing, unexpected or mis-shaped tensor; ``tensors`` lists their checkpoint names."""

    def __init__(self, tensors: list[str], message: str):
        self.tensors = tensors
        super().__init__(message)
