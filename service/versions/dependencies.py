"""Who follows this process's own pointer moves (a FastAPI dependency).

The serving side of an API process (``service/serving/pointer_watch.py``) follows the active
pointers; a move made through this process is handed to it at once, so the next request is
answered by the new version. Declared here as a protocol, so versions need not know serving.
"""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends, Request


class PointerFollower(Protocol):
    def moved(self, model_id: str, version_id: str) -> None:
        """The pointer moved (committed): answer with ``version_id`` from the next request."""

    def refresh(self, model_id: str) -> None:
        """Load the model's active version beside the serving one, then switch."""

    def forget(self, model_id: str) -> None:
        """The model was deleted (committed): drop its pointer and all loaded for it."""


async def get_pointer_follower(request: Request) -> PointerFollower | None:
    """This process's pointer watch, None when it does not serve."""
    follower: PointerFollower | None = request.app.state.runtime.pointer_watch
    return follower


PointerFollowerDep = Annotated[PointerFollower | None, Depends(get_pointer_follower)]
