"""clusterql's composition root: settings, app factory, authentication, CLI and demo data."""
