"""Approximate candidates for the analog search, once the history outgrows exact search.

Exact search compares every query with every past SKU: one BLAS product, the fastest way up to
tens of thousands of SKUs, but training asks it for every SKU of the history, so its cost grows as
n^2. Past ``ModelSettings.analog_exact_max_rows`` past SKUs, faiss HNSW graphs propose candidates
and ``features.analogs`` re-scores them exactly (the same similarity, the same time rule), so an
approximation can only miss an analog, never return a wrong one or one launched too late.

Why faiss and not hnswlib: the time rule is a filter ("launched at least gap days before the
query"), and faiss applies it inside the graph walk in C++ (``IDSelectorRange``), where hnswlib
calls back into Python per node. Why nested prefixes: a filtered HNSW walk loses recall when most
of the graph is filtered out (an early SKU of a long history may use only 1% of it). With the
history sorted by launch day, the allowed SKUs of any query are a prefix; one graph is built on
each of the prefixes n, n/2, n/4, ... down to the exact-search size, and a query walks the
smallest graph that holds its prefix, so at least half of what it walks is allowed. The graphs
cost 2n insertions in all (n log n), the memory of two copies of the vectors.
"""

from __future__ import annotations

import os

import numpy as np

HNSW_M = 32  # links per node; with the three below: recall@20 0.998-0.999 on clustered 1,792-d vectors
EF_CONSTRUCTION = 40  # 64-80 gained < 0.001 recall for 2.5x the build time (20k SKUs)
# A query's beam and how many candidates it proposes per kind (picture, copy), re-scored exactly in
# features.analogs. 128 / 100 (tuned at 20k SKUs) gave recall@20 0.920 at 300k: the SKUs that lose
# are early ones whose exact top 20 is part family, part near-orthogonal strangers, which a walk
# finds poorly. 512 / 200, swept on the same graphs, gives 0.972 at 300k and 0.9997 at 30k, at
# 18.6 ms a query against 4.1 at 300k (benchmarks/growth.py --sweep-ef/--sweep-candidates).
EF_SEARCH = 512
CANDIDATES = 200


def _faiss():
    """faiss with its OpenMP pool held to the thread budget (``features.threads`` sets the variable)."""
    import faiss

    faiss.omp_set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    return faiss


def checkpoint_sizes(n: int, exact_max_rows: int) -> list[int]:
    """Prefix sizes that get a graph: n, n/2, ... while larger than the exact-search size."""
    sizes, size = [], n
    while size > exact_max_rows:
        sizes.append(size)
        size //= 2
    return sizes


class PrefixGraphs:
    """HNSW graphs (inner product on unit vectors) over nested prefixes of day-sorted vectors."""

    def __init__(self, vectors: np.ndarray, exact_max_rows: int):
        faiss = _faiss()
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.sizes = checkpoint_sizes(len(vectors), exact_max_rows)
        self.graphs = {}
        self.ef_search, self.candidates = EF_SEARCH, CANDIDATES  # a benchmark may sweep them on one build
        for size in self.sizes:
            graph = faiss.IndexHNSWFlat(self.vectors.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
            graph.hnsw.efConstruction = EF_CONSTRUCTION
            graph.add(self.vectors[:size])
            self.graphs[size] = graph

    def search(self, queries: np.ndarray, prefix: np.ndarray, count: int | None = None) -> np.ndarray:
        """For each query, up to ``count`` (default ``self.candidates``) positions among its first
        ``prefix`` vectors, best first (-1 padding). Queries are grouped by prefix: one graph walk per
        group, filtered in C++."""
        faiss = _faiss()
        count = self.candidates if count is None else count
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        out = np.full((len(queries), count), -1, dtype=np.int64)
        for p in np.unique(prefix):
            rows = np.flatnonzero(prefix == p)
            size = min(s for s in self.sizes if s >= p)
            params = faiss.SearchParametersHNSW()
            params.efSearch = max(self.ef_search, count)
            selector = faiss.IDSelectorRange(0, int(p))  # held here: params does not own it
            if p < size:
                params.sel = selector
            _, found = self.graphs[size].search(queries[rows], count, params=params)
            out[rows] = found
        return out
