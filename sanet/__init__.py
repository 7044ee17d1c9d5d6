"""SANet arbitrary style transfer in PyTorch, faithful to the original release."""

from sanet.errors import SANetError
from sanet.model import SANet
from sanet.stylizer import Stylizer

__all__ = ["SANet", "SANetError", "Stylizer"]
