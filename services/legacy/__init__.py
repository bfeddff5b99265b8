"""The legacy kadaster register: check its rows against each other, plan commands, run them, write letters."""
