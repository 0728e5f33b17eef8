"""The ``/v1`` routes, one module per kind of question; ``/v1/admin`` apart, mounted
only when an admin token is configured."""

from __future__ import annotations

from fastapi import APIRouter

from stanceline.readmodel.routes.admin import router as admin
from stanceline.readmodel.routes.analytics import router as analytics
from stanceline.readmodel.routes.catalogue import router as catalogue
from stanceline.readmodel.routes.export import router as export
from stanceline.readmodel.routes.feed import router as feed
from stanceline.readmodel.routes.networks import router as networks
from stanceline.readmodel.routes.stances import router as stances
from stanceline.readmodel.routes.stream import router as stream
from stanceline.readmodel.routes.subscriptions import router as subscriptions

router = APIRouter(prefix="/v1")
for part in (catalogue, stances, analytics, feed):
    router.include_router(part)
router.include_router(stream)  # /v1/stream: the changes feed as Server-Sent Events
router.include_router(networks)  # /v1/networks/agreement
router.include_router(export)  # /v1/export/statements, /v1/export/changes (streamed)

admin_router = APIRouter(prefix="/v1")
admin_router.include_router(admin)
admin_router.include_router(subscriptions)
