"""dualwrite: zero-downtime DynamoDB migrations."""

__version__ = "0.1.0"
