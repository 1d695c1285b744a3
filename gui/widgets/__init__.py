"""Widgets of the console window (the main window assembles them into docks)."""
