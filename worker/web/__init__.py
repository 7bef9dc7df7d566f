"""The web process: provider callbacks, the HTTP intake API, health and OpenAPI.

::

    POST /callbacks/mensatek   provider callbacks (Basic auth) → queued for process_callback
    POST /v1/jobs/<kind>       intake (Bearer CERTSMS_INTAKE_TOKEN) → 202 {job_id, status}
    GET  /v1/jobs/<id>         the job record
    GET  /healthz              Redis + breaker
    GET  /openapi.json         the OpenAPI 3.1 document
"""

from certsms.mensatek.callbacks import (
    AttachmentEvent,
    Callback,
    CallbackInvalid,
    InboundReply,
    StatusCallback,
    parse_callback,
)
from certsms.worker.web.app import check_web_settings, create_app
from certsms.worker.web.serving import max_request_body_bytes, waitress_options

__all__ = [  # noqa: RUF022 - grouped
    # app
    "check_web_settings",
    "create_app",
    "max_request_body_bytes",
    "waitress_options",
    # callbacks
    "AttachmentEvent",
    "Callback",
    "CallbackInvalid",
    "InboundReply",
    "StatusCallback",
    "parse_callback",
]
