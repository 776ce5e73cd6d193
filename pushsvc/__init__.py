"""pushsvc: real-time push service for VM-migration progress."""

__version__ = "0.1.0"
