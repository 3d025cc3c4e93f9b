"""Offline training, evaluation and benchmarking for the hw3core models (needs requirements-train.txt)."""
