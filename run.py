#!/usr/bin/env python3
"""Shim for a checkout: ``python run.py ...`` is the installed ``pushsvc ...`` command (``pushsvc.cli:main``)."""

import sys

from pushsvc.cli import main

if __name__ == "__main__":
    sys.exit(main())
