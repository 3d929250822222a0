"""Training for CodeFormer, ID-CodeFormer and CodeFormer++ (one module per stage).

Installed as ``vidrestore.training`` (the folder is ``training/`` at the top of the
repository); it imports ``vidrestore.models`` and ``vidrestore.faces.align``, and the run time
never imports it.
"""
