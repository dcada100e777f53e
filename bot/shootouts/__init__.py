"""Shoot-outs: one brief, 1–5 prompts, every chosen model, blind rounds, a report and an export."""
