"""The full_ft update method: its declaration and implementation."""
