"""Amazon CloudFront: the media distribution's cache."""
