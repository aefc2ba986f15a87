"""Pictures: 2-D scatter of real vs generated samples over D's decision surface."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

# generator colours: tab10 without its grey (index 7), which the black real points resemble, then tab20b
GENERATOR_COLOURS = [plt.get_cmap("tab10")(i) for i in (0, 1, 2, 3, 4, 5, 6, 8, 9)] + \
    [plt.get_cmap("tab20b")(i) for i in range(20)]


def bounds(real: torch.Tensor, margin: float = 0.25):
    lo = real.min(0).values.cpu().numpy()
    hi = real.max(0).values.cpu().numpy()
    pad = margin * (hi - lo).max() + 1e-3
    return lo - pad, hi + pad


def scatter_2d(real, fake, generator_index=None, surface=None, lims=None, title: str = ""):
    """Return a matplotlib Figure. `surface(x)` gives D's logits on a (N,2) tensor."""
    real = real.detach().float().cpu()
    fake = fake.detach().float().cpu()
    lo, hi = lims if lims is not None else bounds(torch.cat([real, fake]))
    real, fake = real.numpy(), fake.numpy()  # matplotlib would unbind tensors element by element (slow)
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    # fixed margins (the colorbar takes its share of them), not tight_layout(): that draws the whole
    # figure once more to measure it, a fifth of a picture's time, and a run draws one every sample_every
    fig.subplots_adjust(left=0.1, right=0.82 if surface is not None else 0.97, bottom=0.06, top=0.95)
    if surface is not None:
        xs = np.linspace(lo[0], hi[0], 120)
        ys = np.linspace(lo[1], hi[1], 120)
        gx, gy = np.meshgrid(xs, ys)
        pts = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], 1)).float()
        z = surface(pts).detach().float().cpu().numpy().reshape(gx.shape)
        cs = ax.contourf(gx, gy, z, levels=20, cmap="coolwarm", alpha=0.45)
        fig.colorbar(cs, ax=ax, fraction=0.046, pad=0.04, label="D logit")
    ax.scatter(real[:, 0], real[:, 1], s=3, c="black", alpha=0.35, label="real")
    if generator_index is None or int(generator_index.max()) == 0:
        ax.scatter(fake[:, 0], fake[:, 1], s=3, c="tab:orange", alpha=0.6, label="generated")
    else:
        idx = generator_index.cpu().numpy()
        for k in np.unique(idx):
            sel = idx == k
            ax.scatter(fake[sel, 0], fake[sel, 1], s=3, color=GENERATOR_COLOURS[int(k) % len(GENERATOR_COLOURS)], alpha=0.6, label=f"G{k}")
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7, markerscale=3)
    ax.set_title(title, fontsize=9)
    return fig


def figure_to_array(fig) -> np.ndarray:
    """HWC uint8 RGB, then the figure is closed."""
    fig.canvas.draw()
    arr = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return arr


def image_grid(rows, nrow: int = 8) -> np.ndarray:
    """Images in [-1, 1] -> one HWC uint8 grid. `rows` is a list of batches, one per generator;
    with several generators each batch is one row."""
    from torchvision.utils import make_grid
    batch = torch.cat([r.detach().float().cpu() for r in rows])
    per_row = len(rows[0]) if len(rows) > 1 else nrow
    grid = make_grid(batch, nrow=per_row, padding=2, normalize=True, value_range=(-1, 1), pad_value=1.0)
    return (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
