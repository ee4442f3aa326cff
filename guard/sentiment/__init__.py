"""Inference: the only package that imports torch and transformers (besides training)."""
