"""vidrestore: streaming video face restoration (CodeFormer, ID-CodeFormer, CodeFormer++)."""

__version__ = "0.1.0"
