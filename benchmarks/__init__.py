"""Studies and measurements outside the product: the VISUELLE benchmark (``benchmarks.visuelle``)
and scripts that print speed figures.

They may import ``features`` and ``training``; the product (features, training, serving,
trialcast) never imports them, and the installed package does not include them: run them from
the repository root (``python -m benchmarks.visuelle ...``).
"""
