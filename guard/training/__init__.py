"""The reproducible training pipeline of the bundled sentiment model (``guard train-sentiment``)."""
