"""VISUELLE (v1): real new-product launch sales, read into the catalogue contract and scored by the
published protocol. The data stay outside the repository; every function takes the folder holding
``train.csv``, ``test.csv``, ``gtrends.csv``, ``image_index.csv`` and ``images/``.

Run from the repository root:
``python -m benchmarks.visuelle --data ../shared/benchmarks/visuelle --out docs/benchmarks/``.
"""
