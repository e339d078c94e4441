"""Importers for platform exports and prepared datasets."""
