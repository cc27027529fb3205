"""Device families: one sub-package each, a sans-I/O codec plus an async adapter."""
