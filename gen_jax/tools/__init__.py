"""Command-line tools around a run directory (e.g. importing published weights)."""
