"""Application services: the register, the command catalogue, and the command pipeline."""
