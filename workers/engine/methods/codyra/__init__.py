"""The codyra update method: its declaration and implementation."""
