"""Augmentations D sees (DiffAugment, ADA), applied in GAN.critic to every image a discriminator scores.

Only schemas.py is imported eagerly (config checks read it without torch); pipeline.py builds the
augmentation a run uses, diffaugment.py and ada_ops.py hold the transformations.
"""
