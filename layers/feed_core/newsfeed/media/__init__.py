"""Media uploads: a record per medium and a signed upload target for its bytes."""
