"""Every matplotlib figure of actspec (matplotlib is imported inside the functions)."""
