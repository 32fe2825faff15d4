"""Probability distributions shared by several families (likelihood maths, no networks)."""
