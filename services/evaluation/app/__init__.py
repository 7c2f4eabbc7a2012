"""Evaluation use cases, workers and jobs (one module per aggregate or workflow; never imports ``api``)."""
