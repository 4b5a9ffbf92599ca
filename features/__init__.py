"""The product's core library: contract, encoders, cache, analog index, feature assembly.

Importing it first switches off every library's reporting home (``features/offline.py``): every
path to ONNX Runtime goes through this package, so the switch is in place before that library loads.
"""

from features.offline import opt_out as _opt_out

_opt_out()
