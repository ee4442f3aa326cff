"""Storage: the only package that imports redis."""
