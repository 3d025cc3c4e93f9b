"""The tabs of the Homework 3 demo suite (composed by ``app.py``): a module per tab (domain, sentiment, writer,
check_model) and per idea they share (inputs, uploads, the inside views, the training panel)."""
