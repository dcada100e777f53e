"""Renderers: plain text for the terminal, embeds for Discord."""
