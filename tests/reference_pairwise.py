"""NumPy references of the pairwise measures (filled in by the pairwise work)."""
