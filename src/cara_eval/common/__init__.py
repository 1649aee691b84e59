"""Shared by every stage: the canonical schema, disclosure control, log redirection, the PyTensor compile cache.
Owns no stage of its own; nothing here imports a stage package.
"""
