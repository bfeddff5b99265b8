"""The `kadaster` console: one module per group of commands, shared helpers in `common`."""
