"""Amazon S3: the media bucket's upload targets."""
