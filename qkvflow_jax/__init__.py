"""qkvflow_jax: see README.md (filled by its paper issue)."""
