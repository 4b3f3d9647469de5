"""bertless: one ONNX bundle of a BERT-style encoder, served on every serverless cloud."""

from bertless.core.predictor import Predictor
from bertless.core.version import __version__

__all__ = ["Predictor", "__version__"]
