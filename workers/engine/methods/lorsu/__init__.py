"""The lorsu update method: its declaration and implementation."""
