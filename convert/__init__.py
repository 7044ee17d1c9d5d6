"""The conversion pipeline: PyTorch -> ONNX -> TensorFlow -> TensorFlow.js, checked at each step.

Stages (each a function with typed inputs and outputs, each followed by a parity check):
`export_onnx`, `onnx_to_tf`, `build_tf_module`, `tf_to_tfjs`. `python -m convert` runs them all.
"""

import os

# TensorFlow's C++ start-up notices (CPU features, oneDNN) would bury the progress lines.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
