"""Scoring a trained model: metrics, flow metrics, predictions.csv, the one report function that
stages and `python -m kdgat.evaluate` share, and per-modality scoring (BATADAL's S)."""
