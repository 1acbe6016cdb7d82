"""Pure functions over in-memory tables: verdicts and their statistics, findings, leaf distributions,
boosters beside their linear counterparts."""
