"""The `kadaster` console: a table of commands, their light parsers, one module per group of commands."""
