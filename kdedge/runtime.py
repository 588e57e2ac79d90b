"""The torch-free runtime for exported bundles (its source and own distribution live in export/python)."""

from kdedge_runtime import BUNDLE_FORMAT, BundleError, Classifier, Prediction

__all__ = ["BUNDLE_FORMAT", "BundleError", "Classifier", "Prediction"]
