"""ADA's augmentation pipeline (Karras, Aittala, Hellsten, Laine, Lehtinen and Aila, "Training Generative
Adversarial Networks with Limited Data", NeurIPS 2020), its "bgc" groups, written from the paper's
appendix B in plain PyTorch.

Each op applies to an image with probability p, independently of the others; when it applies, its value
is drawn from the distribution below. From the paper (appendix B and its pseudocode figure):

- b, pixel blitting: xflip, i ~ U{0, 1} (mirror when i = 1); rotate90, i ~ U{0, 3} (rotate by i * 90
  degrees); integer translation, (tx, ty) ~ U(-0.125, 0.125)^2, rounded to whole pixels (tx * W, ty * H);
- g, general geometric: isotropic scaling s ~ Lognormal(0, (0.2 ln 2)^2); pre-rotation theta ~ U(-pi, pi);
  anisotropic scaling (s, 1/s), s ~ Lognormal(0, (0.2 ln 2)^2); post-rotation theta ~ U(-pi, pi);
  fractional translation (tx, ty) ~ N(0, 0.125^2)^2 of the image size. Each rotation applies with
  p_rot = 1 - sqrt(1 - p), so that at least one of the two applies with probability p;
- c, colour (on the luma axis v = (1, 1, 1) / sqrt(3)): brightness b ~ N(0, 0.2^2) added to every
  channel; contrast c ~ Lognormal(0, (0.5 ln 2)^2) scales every channel; luma flip, i ~ U{0, 1}, the
  Householder reflection I - 2 i v v^T; hue rotation theta ~ U(-pi, pi) about v; saturation
  s ~ Lognormal(0, (ln 2)^2), v v^T + s (I - v v^T).

Ours, not the paper's:
- the resampling is one bilinear F.grid_sample with reflection padding, which mirrors about the image's
  edge (pixel -1 reads pixel 0, -2 reads 1), for the paper's wavelet-filtered 2x upsampling: cheaper,
  and the brief's;
- conventions: pixel coordinates have x to the right and y down, centred on the image's centre; a
  rotation by theta maps (x, y) to (x cos - y sin, x sin + y cos) (clockwise as displayed); the
  transformations act on the image's content in the order listed (xflip first, fractional translation
  last; brightness first, saturation last), a translation by (tx, ty) moving a pixel by (+tx, +ty);
- contrast scales about 0, the middle of the [-1, 1] range the images live in (the paper's scale3d(c, c,
  c) on images in [-1, 1]), not about each image's mean;
- a one-channel image is an image with R = G = B: brightness, contrast and luma flip act on its one
  channel (x -> c (1 - 2 i) (x + b)), hue and saturation leave it as it is.
"""
from __future__ import annotations

import math
from typing import Dict

import torch
import torch.nn.functional as F
from torch import Tensor

OPS = {
    "b": ("xflip", "rotate90", "xint"),
    "g": ("scale", "rotate_pre", "aniso", "rotate_post", "xfrac"),
    "c": ("brightness", "contrast", "lumaflip", "hue", "saturation"),
}
ALL = OPS["b"] + OPS["g"] + OPS["c"]
ROTATIONS = ("rotate_pre", "rotate_post")

# the paper's spreads
XINT_MAX = 0.125
SCALE_STD = 0.2 * math.log(2)
ANISO_STD = 0.2 * math.log(2)
XFRAC_STD = 0.125
BRIGHTNESS_STD = 0.2
CONTRAST_STD = 0.5 * math.log(2)
SATURATION_STD = 1.0 * math.log(2)

# the value that makes each op the identity, used for the images an op is off for
IDENTITY = {"xflip": 0.0, "rotate90": 0.0, "xint": 0.0, "scale": 1.0, "rotate_pre": 0.0, "aniso": 1.0,
            "rotate_post": 0.0, "xfrac": 0.0, "brightness": 0.0, "contrast": 1.0, "lumaflip": 0.0,
            "hue": 0.0, "saturation": 1.0}


def draw(n: int, p: Tensor, generator: torch.Generator, device, groups: str = "bgc") -> Dict[str, Tensor]:
    """For every op, `<op>_on` (n,) bool, whether it applies, and `<op>` (n,) or (n, 2) float32, its value
    (drawn whether or not it applies). Every op is drawn whatever `groups` and p are, in one fixed order,
    so the generator moves alike and a caller can draw the global batch and keep its own rows; an op
    outside `groups` is off."""
    p = torch.as_tensor(p, dtype=torch.float32, device=device).clamp(0, 1)
    p_rot = 1 - torch.sqrt(1 - p)
    enabled = {op for g in groups for op in OPS[g]}

    def u(*shape):
        return torch.rand(n, *shape, generator=generator, device=device)

    def z(*shape):
        return torch.randn(n, *shape, generator=generator, device=device)

    def pick(k):
        return torch.randint(0, k, (n,), generator=generator, device=device).float()

    gate = u(len(ALL))
    values = {  # a dict display evaluates in order: this is the draw order
        "xflip": pick(2),
        "rotate90": pick(4),
        "xint": (u(2) * 2 - 1) * XINT_MAX,
        "scale": torch.exp(z() * SCALE_STD),
        "rotate_pre": (u() * 2 - 1) * math.pi,
        "aniso": torch.exp(z() * ANISO_STD),
        "rotate_post": (u() * 2 - 1) * math.pi,
        "xfrac": z(2) * XFRAC_STD,
        "brightness": z() * BRIGHTNESS_STD,
        "contrast": torch.exp(z() * CONTRAST_STD),
        "lumaflip": pick(2),
        "hue": (u() * 2 - 1) * math.pi,
        "saturation": torch.exp(z() * SATURATION_STD),
    }
    params = {}
    for k, op in enumerate(ALL):
        on = gate[:, k] < (p_rot if op in ROTATIONS else p)
        params[op + "_on"] = on if op in enabled else torch.zeros_like(on)
        params[op] = values[op]
    return params


def subset(params: Dict[str, Tensor], rows) -> Dict[str, Tensor]:
    return {k: v[rows] for k, v in params.items()}


def _value(params: Dict[str, Tensor], op: str, dtype) -> Tensor:
    """The op's value where it is on, its identity value where it is off."""
    v, on = params[op].to(dtype), params[op + "_on"]
    return torch.where(on.view(-1, *[1] * (v.dim() - 1)), v, torch.full_like(v, IDENTITY[op]))


def _any_on(params: Dict[str, Tensor], ops) -> Tensor:
    return torch.stack([params[op + "_on"] for op in ops]).any(0)


def _mat(a, b, c, d, e, f) -> Tensor:
    """(n, 3, 3) rows [a b c], [d e f], [0 0 1]."""
    zero, one = torch.zeros_like(a), torch.ones_like(a)
    return torch.stack([a, b, c, d, e, f, zero, zero, one], -1).view(-1, 3, 3)


def _scale(sx, sy):
    zero = torch.zeros_like(sx)
    return _mat(sx, zero, zero, zero, sy, zero)


def _rotate(cos, sin):
    zero = torch.zeros_like(cos)
    return _mat(cos, -sin, zero, sin, cos, zero)


def _translate(tx, ty):
    zero, one = torch.zeros_like(tx), torch.ones_like(tx)
    return _mat(one, zero, tx, zero, one, ty)


def _geometric(x: Tensor, params: Dict[str, Tensor]) -> Tensor:
    n, _, h, w = x.shape
    dt = torch.promote_types(x.dtype, torch.float32)
    v = {op: _value(params, op, dt) for op in OPS["b"] + OPS["g"]}
    # grid_sample wants, for each output pixel, where to read the input: the inverse of the content's
    # transformation, so each op's inverse is multiplied on in the content's order
    k = v["rotate90"].long()
    # exact, unlike cos(pi/2); no tensor from Python data, which would be a host-to-device copy a step
    cos90 = (k == 0).to(dt) - (k == 2).to(dt)
    sin90 = (k == 1).to(dt) - (k == 3).to(dt)
    xint = torch.round(torch.stack([v["xint"][:, 0] * w, v["xint"][:, 1] * h], 1))
    xfrac = torch.stack([v["xfrac"][:, 0] * w, v["xfrac"][:, 1] * h], 1)
    one = torch.ones_like(v["scale"])
    inverses = [
        _scale(1 - 2 * v["xflip"], one),
        _rotate(cos90, -sin90),
        _translate(-xint[:, 0], -xint[:, 1]),
        _scale(1 / v["scale"], 1 / v["scale"]),
        _rotate(torch.cos(v["rotate_pre"]), -torch.sin(v["rotate_pre"])),
        _scale(1 / v["aniso"], v["aniso"]),
        _rotate(torch.cos(v["rotate_post"]), -torch.sin(v["rotate_post"])),
        _translate(-xfrac[:, 0], -xfrac[:, 1]),
    ]
    g = inverses[0]
    for m in inverses[1:]:
        g = g @ m
    # affine_grid's coordinates (align_corners=False) are the centred pixel coordinates over (W/2, H/2):
    # theta = diag(2/w, 2/h, 1) g diag(w/2, h/2, 1), its first two rows written out
    theta = torch.stack([g[:, 0, 0], g[:, 0, 1] * (h / w), g[:, 0, 2] * (2 / w),
                         g[:, 1, 0] * (w / h), g[:, 1, 1], g[:, 1, 2] * (2 / h)], 1).view(-1, 2, 3).to(x.dtype)
    grid = F.affine_grid(theta, [n, x.shape[1], h, w], align_corners=False)
    y = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return torch.where(_any_on(params, OPS["b"] + OPS["g"]).view(-1, 1, 1, 1), y, x)


def _color(x: Tensor, params: Dict[str, Tensor]) -> Tensor:
    c_ = x.shape[1]
    dt = torch.promote_types(x.dtype, torch.float32)
    v = {op: _value(params, op, dt) for op in OPS["c"]}
    if c_ == 1:
        gain = v["contrast"] * (1 - 2 * v["lumaflip"])
        y = (x * gain.view(-1, 1, 1, 1) + (v["brightness"] * gain).view(-1, 1, 1, 1)).to(x.dtype)
    elif c_ == 3:
        axis = torch.full((3,), 1 / math.sqrt(3), dtype=dt, device=x.device)
        vv, eye = torch.outer(axis, axis), torch.eye(3, dtype=dt, device=x.device)
        cyclic = torch.roll(eye, 1, 0)  # rows e2, e0, e1
        cross = (cyclic - cyclic.T) / math.sqrt(3)  # v x ., as a matrix
        cos, sin = torch.cos(v["hue"]).view(-1, 1, 1), torch.sin(v["hue"]).view(-1, 1, 1)
        flip = eye - 2 * v["lumaflip"].view(-1, 1, 1) * vv
        hue = cos * eye + sin * cross + (1 - cos) * vv  # Rodrigues' rotation about v
        sat = vv + v["saturation"].view(-1, 1, 1) * (eye - vv)
        # brightness comes first, so it goes through everything after it: out = m (x + b)
        m = sat @ hue @ flip * v["contrast"].view(-1, 1, 1)
        shift = m.sum(2) * v["brightness"].view(-1, 1)
        y = torch.einsum("nij,njhw->nihw", m.to(x.dtype), x) + shift.to(x.dtype).view(-1, 3, 1, 1)
    else:
        raise ValueError(f"ADA's colour ops take 1 or 3 channels, got {c_}")
    return torch.where(_any_on(params, OPS["c"]).view(-1, 1, 1, 1), y, x)


def apply(x: Tensor, params: Dict[str, Tensor]) -> Tensor:
    """x (n, C, H, W) in [-1, 1], C = 1 or 3: the geometric ops as one resampling, then the colour ops as
    one affine colour map, per image. Differentiable in x. An image every op is off for comes out bit for
    bit as it went in (the transformed batch is computed whole and the originals selected back, so no
    host sync decides which images to skip)."""
    return _color(_geometric(x, params), params)
