"""The keeplora update method: its declaration and implementation."""
