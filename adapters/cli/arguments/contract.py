"""The parsers of `kadaster contract`: the integration contract's AsyncAPI and JSON Schema documents."""

from __future__ import annotations

import argparse

from adapters.contract import CONTRACT_DIR


def contract(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Generates the contract's documents from the command models (the single source): "
        "an AsyncAPI 3.0 document of every subject, and one JSON Schema per command envelope plus the "
        "outcome and the bare envelope. The checked-in copies live in adapters/contract/."
    )


def asyncapi(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON instead of YAML")


def schemas(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write into (created if missing)")


def write(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Writes asyncapi.yaml and every *.schema.json, and removes "
        "schemas of command types that no longer exist."
    )
    p.add_argument("--dir", default=str(CONTRACT_DIR), help="contract folder (default: %(default)s)")


def check(p: argparse.ArgumentParser) -> None:
    p.description = "For CI: compares the checked-in documents with what the models generate now."
    p.add_argument("--dir", default=str(CONTRACT_DIR), help="contract folder (default: %(default)s)")
