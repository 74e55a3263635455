"""Flood generator: the masker (where water goes) and the painter (what it looks like).

Pure PyTorch; nothing here imports Django. See ``generator.models`` for the networks,
``generator.losses`` for the objectives, ``generator.optim`` for ExtraAdam and
``generator.checkpoint`` for the on-disk model format.
"""
