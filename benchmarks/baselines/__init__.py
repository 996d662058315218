"""Third-party baselines, rebuilt with our own loaders so that nothing heavy gets installed."""
