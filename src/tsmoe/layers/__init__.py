"""Reusable network parts: liquid (continuous-time) cells, mixtures and gates, attention."""
