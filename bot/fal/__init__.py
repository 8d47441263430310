"""fal's queue and storage, over one injected `httpx.AsyncClient`.

`client` (FalClient: enqueue, follow, result, cancel, upload), `status` (handles,
events and the parsing of what fal says), `retry` (every call: key, retries,
redaction), `upload` (data URIs and the CDN), `pool` (connections for many jobs).
Import from here: the modules behind these names may move.
"""

from bot.fal.client import CANCEL_OUTCOMES, CancelOutcome, FalClient
from bot.fal.pool import PoolShards, new_http_client
from bot.fal.retry import ACCOUNT_STATUSES, REFUSED_STATUSES, RETRY_STATUSES, FalAccountError
from bot.fal.status import (
    Completed,
    Failed,
    FalEvent,
    LogLine,
    Queued,
    QueueHandle,
    Running,
    parse_status,
    progress_from_logs,
    progress_from_message,
    validation_message,
)

__all__ = [
    "ACCOUNT_STATUSES",
    "CANCEL_OUTCOMES",
    "REFUSED_STATUSES",
    "RETRY_STATUSES",
    "CancelOutcome",
    "Completed",
    "Failed",
    "FalAccountError",
    "FalClient",
    "FalEvent",
    "LogLine",
    "PoolShards",
    "QueueHandle",
    "Queued",
    "Running",
    "new_http_client",
    "parse_status",
    "progress_from_logs",
    "progress_from_message",
    "validation_message",
]
