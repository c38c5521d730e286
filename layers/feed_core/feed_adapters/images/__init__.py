"""Image decoding and encoding (Pillow): only the media function imports this package."""
