"""The tabs of the Homework 3 demo suite (composed by ``app.py``), one module per part of the assignment."""
