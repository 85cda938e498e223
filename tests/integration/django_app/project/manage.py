#!/usr/bin/env python3
"""manage.py of the tiny Channels project that tests bayleaf's Django integration."""
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siteproj.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
