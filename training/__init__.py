"""Fit, evaluate, gate, register and retrain the forecaster."""
