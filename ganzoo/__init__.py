"""ganzoo: a command-line experiment runner for GAN training methods."""
__version__ = "0.1.0"
