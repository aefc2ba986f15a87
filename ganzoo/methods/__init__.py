"""Training methods. Each is a class the loop drives through step / sample / state_dict;
methods/build.py makes one from a config. Imported lazily, so config checks (which read
methods/schemas.py) do not import torch."""


def __getattr__(name):
    if name == "build_method":
        from . import build
        return getattr(build, name)
    raise AttributeError(name)
