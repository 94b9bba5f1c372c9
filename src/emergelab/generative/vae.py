"""A multilayer-perceptron variational autoencoder (Kingma & Welling 2014) of images with pixels in [0, 1].

    encoder  x (B, D) -> MLP -> (mu, logvar) (B, latent_dim)
    sample   z = mu + exp(logvar / 2) * eps, eps ~ N(0, I)     (the reparameterization trick)
    decoder  z -> MLP (mirrored widths) -> pixel logits (B, D); p(x|z) = product of Bernoullis

ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || N(0, I)); the loss is  recon + beta * KL  with recon the summed binary
cross-entropy (nats per image) and KL in closed form. The noise eps is an argument, so a batch and its noise
are one pure function of (seed, step) and training resumes exactly.

Example:
    >>> vae = VAE(64, latent_dim=2, hidden=(256, 128))
    >>> x = torch.rand(8, 64); eps = torch.randn(8, 2)
    >>> terms = vae.terms(x, eps)         # {"recon": (8,), "kl": (8,)}
    >>> vae.decode(torch.randn(5, 2)).shape
    torch.Size([5, 64])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


class VAE(nn.Module):
    def __init__(self, n_pixels: int, latent_dim: int = 2, hidden: Sequence[int] = (256, 128)):
        super().__init__()
        self.n_pixels, self.latent_dim = n_pixels, latent_dim
        self.encoder = _mlp([n_pixels, *hidden])
        self.to_stats = nn.Linear(hidden[-1], 2 * latent_dim)  # -> (mu, logvar)
        self.decoder = nn.Sequential(_mlp([latent_dim, *reversed(hidden)]), nn.Linear(hidden[0], n_pixels))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, D) in [0, 1] -> (mu, logvar), each (B, latent_dim)."""
        mu, logvar = self.to_stats(self.encoder(x)).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 8.0)  # keeps exp() finite early in training

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, latent_dim) -> pixel logits (B, D)."""
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, latent_dim) -> mean image (B, D) in [0, 1]."""
        return torch.sigmoid(self.decode_logits(z))

    def terms(self, x: torch.Tensor, eps: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-image ELBO terms in nats: recon = -log p(x|z) at z = mu + sigma * eps, kl = KL(q(z|x) || N(0, I));
        each (B,). -ELBO = recon + kl."""
        mu, logvar = self.encode(x)
        z = mu + torch.exp(0.5 * logvar) * eps
        recon = F.binary_cross_entropy_with_logits(self.decode_logits(z), x, reduction="none").sum(-1)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)
        return {"recon": recon, "kl": kl}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction (B, D) of x from the posterior mean."""
        return self.decode(self.encode(x)[0])
