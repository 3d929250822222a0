"""Training for CodeFormer, ID-CodeFormer and CodeFormer++ (one module per stage)."""
