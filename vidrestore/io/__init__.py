"""Video decode and encode (PyAV), probing, atomic output, random-access reading."""
