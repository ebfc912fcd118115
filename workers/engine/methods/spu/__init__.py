"""The spu update method: its declaration and implementation."""
