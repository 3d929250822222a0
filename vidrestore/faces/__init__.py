"""Faces: detection, alignment to the FFHQ template, tracking, identity and paste-back."""
