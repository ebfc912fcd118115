"""The lora update method: its declaration and implementation."""
