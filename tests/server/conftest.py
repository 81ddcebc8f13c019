"""The browser tests' Chromium fixture (tests/editor_page.py): module scope, so one Chromium per module."""

from editor_page import browser  # noqa: F401 - a pytest fixture
