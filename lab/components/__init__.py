"""One module per lab server; each exposes ``start(ctx, state) -> dict``."""
