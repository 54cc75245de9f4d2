"""The domain kernel: findings, policies and their rules, verdicts, the report and the
errors. It imports nothing else from the project; every other layer builds on it."""
