"""ib-audit: a compliance and security linter for EC2 Image Builder distribution configurations."""

__version__ = "0.1.0"
