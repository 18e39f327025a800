"""Data: the sources the theory talks about (circle, sphere, subspace, smoothed, digits, CIFAR-10,
files), preprocessing, and diagnostics (separation, span dimension) as numbers."""
