"""MongoDB (DocumentDB; FerretDB locally): posts, likes, engagement events and stats."""
