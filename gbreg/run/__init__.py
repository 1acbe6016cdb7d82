"""Running a study: explicit phases, one loop over trials, executors (inline, local processes, Dask),
progress, and the steps after the sweep."""
