"""raynas: large-scale training-free neural architecture search on Ray."""

__version__ = "0.1.0"
