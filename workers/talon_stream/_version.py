"""The worker's version, written into DLQ headers and the User-Agent."""

__version__ = "0.1.0"
