"""`python -m adapters.cli <command>` runs the `kadaster` console."""

from adapters.cli.main import main

raise SystemExit(main())
