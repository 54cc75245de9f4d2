"""Checks, one module per area. Each collects Findings and never raises for bad input."""
