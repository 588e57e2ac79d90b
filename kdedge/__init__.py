"""kdedge: distil a large NLP classifier into a small, fast student and ship it as ONNX."""

__version__ = "0.1.0"

from kdedge.errors import KdedgeError

__all__ = ["KdedgeError", "__version__"]
