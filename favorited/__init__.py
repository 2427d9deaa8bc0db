"""favorited: livestream orchestration on LiveKit for the Favorited platform."""
