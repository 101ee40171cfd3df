"""NumPy references of the agreement and learning measures (filled in by the analysis work)."""
