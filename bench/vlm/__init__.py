"""The continual benchmark's VLM scenario: question/answer corrections of a VLM's vision tower
(through its answers by default, or the CLIP loss), scored by the answers the VLM generates.

``python -m bench.vlm.run`` runs it and writes ``bench/results/vlm/report.md`` and every run's
JSON (``--report-only`` re-renders; saved runs are reused, so the command resumes).
"""
