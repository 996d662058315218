"""Face branch: detect faces, classify each one's expression."""
