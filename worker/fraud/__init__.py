"""Fraud detection: rule scores, the velocity window, alerts and the trained model."""
