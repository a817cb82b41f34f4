"""The axes and shape checks every transformer-encoder config shares (ViT, BERT)."""

from haliax import Axis


class EncoderShape:
    """Mixin for a config with ``hidden_dim``, ``num_layers``, ``num_heads``, ``mlp_dim`` and ``dropout``."""

    Embed = property(lambda self: Axis("embed", self.hidden_dim))
    Heads = property(lambda self: Axis("heads", self.num_heads))
    HeadSize = property(lambda self: Axis("head_size", self.hidden_dim // self.num_heads))
    Mlp = property(lambda self: Axis("mlp", self.mlp_dim))
    Layers = property(lambda self: Axis("layers", self.num_layers))

    def check_encoder_shape(self, positive: tuple[str, ...] = ()) -> None:
        """``ValueError`` naming the field unless ``positive`` and the encoder sizes are > 0, the heads divide the
        width, and dropout is in [0, 1)."""
        for name in (*positive, "hidden_dim", "num_layers", "num_heads", "mlp_dim"):
            if getattr(self, name) <= 0:
                raise ValueError(f"model.{name} must be positive, got {getattr(self, name)}")
        if self.hidden_dim % self.num_heads:
            raise ValueError(f"model.num_heads ({self.num_heads}) must divide model.hidden_dim ({self.hidden_dim})")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"model.dropout must be in [0, 1), got {self.dropout}")
