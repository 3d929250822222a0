"""Training losses: perceptual (LPIPS), identity (ArcFace), GAN, registration, metric learning."""
