"""Mutation testing of the domain: the report of mutmut's results and the reviewed equivalent mutants."""
