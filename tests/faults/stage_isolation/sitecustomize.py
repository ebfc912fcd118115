"""Put first on PYTHONPATH by tests/faults/test_docker_stages.py: makes a process (and every
process it starts) see only the files on its PYTHONPATH, as in a built image.

The test machine's virtual environment installs this project in editable mode, whose import
finder would otherwise supply any of the project's packages that a Docker stage did not copy.
``site`` imports this module after it has processed the ``.pth`` files that install that
finder, so removing the finder here restores an image's view.
"""

import sys

sys.meta_path[:] = [
    finder
    for finder in sys.meta_path
    if not getattr(finder, "__module__", "").startswith("__editable__")
]
sys.path_hooks[:] = [
    hook
    for hook in sys.path_hooks
    if not getattr(hook, "__module__", "").startswith("__editable__")
]
sys.path_importer_cache.clear()
