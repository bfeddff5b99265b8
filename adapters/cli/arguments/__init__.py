"""Each console command's own parser: what its `--help` says and the arguments it takes, nothing heavier."""
