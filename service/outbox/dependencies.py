"""The process's broker producer, for routes that check the broker (a FastAPI dependency)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.outbox.broker import Broker


async def get_broker(request: Request) -> Broker:
    broker: Broker = request.app.state.runtime.broker
    return broker


BrokerDep = Annotated[Broker, Depends(get_broker)]
