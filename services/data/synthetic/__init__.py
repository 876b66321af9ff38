"""Synthetic training data: scenario catalogs, the template format, the generator and its measures."""
