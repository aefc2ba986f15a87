"""Training methods. Each is a class the loop drives through step / sample / state_dict."""
from .gan import GAN

METHODS = {"gan": GAN}


def build_method(cfg, make_g, make_d, device):
    return METHODS[cfg.method.name](cfg, make_g, make_d, device)
