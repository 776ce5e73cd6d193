#!/usr/bin/env python3
"""pushsvc entry point: ``python run.py [--config PATH]``, ``--demo``, ``token``, ``schema``."""

import sys

from pushsvc.cli import main

if __name__ == "__main__":
    sys.exit(main())
