"""Spectra: the one spectrum summary (eigenvalues, λ_min, condition number, trace, effective rank),
and the iterative/distributed extreme eigensolvers for large n."""
