"""Telegram handlers: one module per feature, assembled in `handlers.register`."""
