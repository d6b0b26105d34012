"""Batch grading: inputs, the engine, the results file, the limiter, the provider Batch API, reports."""
