"""Field accuracy from reviews (placeholder until built)."""
