"""bertless: one ONNX bundle of a BERT-style encoder, served on every serverless cloud."""

from bertless.core.predictor import Predictor

__version__ = "0.1.0"
__all__ = ["Predictor", "__version__"]
