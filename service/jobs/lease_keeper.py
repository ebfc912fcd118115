"""Keeps a claimed job's lease alive for as long as the job runs in this process.

A daemon thread renews the lease every third of its length, through every phase of the job
(loading a model, evaluating, training, storing), in whichever process runs the job: the
solo pool's main process, a prefork pool's child or a thread of a thread pool. A job whose
process dies stops being renewed, so its lease runs out and the sweep recovers it.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from service.db.session import session_scope
from service.jobs.lifecycle import Lease, renew_lease

logger = logging.getLogger(__name__)


class LeaseKeeper:
    """``with LeaseKeeper(factory, lease, lease_seconds) as keeper:`` renews ``lease`` until
    the block ends; ``keeper.lost`` turns True once another worker holds the job."""

    def __init__(
        self, session_factory: sessionmaker[Session], lease: Lease, lease_seconds: int
    ) -> None:
        self._session_factory = session_factory
        self._lease = lease
        self._lease_seconds = lease_seconds
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"vlmc-lease-{lease.job_id[:8]}", daemon=True
        )

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def renew(self) -> bool:
        """Renew once now; False (and ``lost``) when the lease is no longer held."""
        with session_scope(self._session_factory) as session:
            held = renew_lease(session, self._lease, self._lease_seconds)
        if not held:
            self._lost.set()
        return held

    def _run(self) -> None:
        while not self._stop.wait(self._lease_seconds / 3):
            try:
                if not self.renew():
                    if not self._stop.is_set():  # else: the job just finished, as it should
                        logger.warning("lease lost", extra={"job_id": self._lease.job_id})
                    return
            except SQLAlchemyError:  # the database may be briefly away; try again next period
                logger.exception("could not renew the lease")
