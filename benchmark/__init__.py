"""dfbench.benchmark: config, protocols, preprocessing and crop cache, runner, metrics,
results store, leaderboard and CLI."""
