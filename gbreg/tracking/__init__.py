"""MLflow: the one writer (the main process), the store, the local server, and the one reader of a study."""
