"""Run a kdedge ONNX bundle in an application: onnxruntime, tokenizers and numpy, nothing else.

    from kdedge_runtime import Classifier
    clf = Classifier("bundle/")
    clf.predict("a gorgeous, witty film")          # Prediction(label='positive', score=0.97, logits=[...])
    clf.predict(["one", "two"], batch_size=32)     # a list of Predictions
"""

from kdedge_runtime.classifier import BUNDLE_FORMAT, BundleError, Classifier, Prediction

__version__ = "0.1.0"
__all__ = ["BUNDLE_FORMAT", "BundleError", "Classifier", "Prediction", "__version__"]
