"""Finite width: the empirical G-matrix from sampled or given weights (chunked PyTorch), its
checkpoints, the empirical deep NTK, and ``actspec.gram`` (finite or infinite width)."""
