"""Classic collective algorithms built from point-to-point messages on NumPy buffers."""
