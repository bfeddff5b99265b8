"""The integration contract: JSON Schemas and AsyncAPI files, and the code that writes and checks them."""
