"""Protocols: how models are trained and scored across subjects (LOSO, k folds by subject, ablations)."""
