"""guard: a feedback-aware engagement guard for every touch of a user."""

__version__ = "0.1.0"
