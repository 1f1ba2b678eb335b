"""Pretraining stage: token store, masking and batching, model, training loop, checkpoints."""
