"""Networks only training needs (the discriminator)."""

from .discriminator import PatchDiscriminator

__all__ = ["PatchDiscriminator"]
