"""Per-family fusion adapters: tensor layout, activation taps and the transport-map flow graph."""
