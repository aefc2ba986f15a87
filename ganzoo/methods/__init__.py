"""Training methods. Each is a class the loop drives through step / sample / state_dict."""
from .aw import AW
from .fargan import FARGAN
from .gan import GAN
from .microbatch import Microbatch
from .sgan import SGAN
from .stackelberg import Stackelberg

METHODS = {"gan": GAN, "fargan": FARGAN, "aw": AW, "stackelberg": Stackelberg, "microbatch": Microbatch,
           "sgan": SGAN}


def build_method(cfg, make_g, make_d, device):
    return METHODS[cfg.method.name](cfg, make_g, make_d, device)
