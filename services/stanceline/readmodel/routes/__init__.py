"""The ``/v1`` routes, one module per kind of question."""

from __future__ import annotations

from fastapi import APIRouter

from stanceline.readmodel.routes.analytics import router as analytics
from stanceline.readmodel.routes.catalogue import router as catalogue
from stanceline.readmodel.routes.feed import router as feed
from stanceline.readmodel.routes.stances import router as stances

router = APIRouter(prefix="/v1")
for part in (catalogue, stances, analytics, feed):
    router.include_router(part)
