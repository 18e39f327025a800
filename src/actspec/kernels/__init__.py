"""Infinite-width kernels: Gaussian expectations and duals (closed form, table, quadrature), Hermite
coefficients, the two-layer G∞/H∞ and the deep NNGP/NTK recursion."""
