"""Generative models of the source text (VAE; GAN and super-resolution to follow) and the sample-quality
metrics they share (`generative.quality`)."""
