"""Serving: reads exported artifacts only."""
