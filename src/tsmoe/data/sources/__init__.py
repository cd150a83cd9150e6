"""One adapter per data source: its parameters, how to load it, which generic form it prepares through."""
