"""Matching: pCTR models and multi-stage optimization plans."""
