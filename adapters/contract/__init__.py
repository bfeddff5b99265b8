"""The integration contract: JSON Schemas and AsyncAPI files, and the code that writes and checks them."""

from pathlib import Path

CONTRACT_DIR = Path(__file__).parent
"""Where the checked-in contract documents live, beside the code that writes them."""
