"""Served answers: answer ids, what serving keeps of an answer while its model captures
feedback, and feedback that flags an answer with the right one (an item of the inbox)."""
