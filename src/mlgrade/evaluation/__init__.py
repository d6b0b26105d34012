"""Measuring agreement with human graders: eval, metrics, rubric derivation."""
