"""Measurements of delivered images (engine side; never imports discord)."""
