"""The Mensatek API v7 client: nine functions, one HTTP session, typed results and errors.

One :class:`requests.Session` per client (pooled, Basic auth, TLS verified,
separate connect and read timeouts). Every call POSTs a JSON body with
``Resp=JSON`` (the upload in FILES mode posts multipart with the file in field
``Fichero``), carries a fresh request id (also sent as ``X-Request-Id``) and
updates :attr:`MensatekClient.last_credits` from the answer's ``Cred``. Answers
become errors in :mod:`mensatek.answers` only; transport retries follow
:mod:`mensatek.retrying` (a send is never re-posted after its body may have left).
Each retry is a new request (its own id) and passes the provider guard when one
is installed (:func:`mensatek.retrying.gated_attempts`).
The client is thread-safe as far as ``requests`` sessions are.
"""

from __future__ import annotations

import json
import mimetypes
import time
import uuid
import zipfile
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import requests
import structlog
from requests.adapters import HTTPAdapter

from certsms.config.settings import Settings
from certsms.mensatek._download import (
    CHUNK_BYTES,
    looks_like_pdf,
    looks_like_zip,
    store_pdf_as_zip,
    store_zip,
)
from certsms.mensatek._transport import (
    SupportsParams,
    SupportsUpload,
    form_value,
    read_capped,
    read_head,
    transport_error,
)
from certsms.mensatek.answers import FUNCTIONS, IDEMPOTENT, error_for_answer, error_for_status
from certsms.mensatek.answers import parse_retry_after as _retry_after
from certsms.mensatek.errors import MensatekError, ProviderUnavailable
from certsms.mensatek.parsing import Answer, parse_answer
from certsms.mensatek.results import (
    CancelResult,
    CertificateResult,
    CreditsResult,
    DeleteFileResult,
    ListFilesResult,
    ReportResult,
    RescheduleResult,
    SendResult,
    UploadResult,
)
from certsms.mensatek.retrying import call_with_retries, is_retryable, is_unhealthy

__all__ = ["MensatekClient", "SupportsParams", "SupportsUpload", "is_retryable", "is_unhealthy"]

T = TypeVar("T")
log = structlog.get_logger(__name__)

RANGE_PARAMS = ("Fechainicio", "Fechafin")
"""Parameters of a date-range certificate download (never repeated inside a call)."""

ERROR_BODY_MAX_BYTES = 1024 * 1024
"""A non-ZIP certificate answer longer than this is not read further (it is not an answer)."""


def _checked(result: UploadResult) -> UploadResult:
    """Log an upload whose final name (the provider's) breaks the v7 rule: a ``(FILE:…)``
    macro naming it would be refused locally."""
    if result.name_problem:
        log.warning("library_name_unusable", name=(result.name or "")[:60], function="upload")
    return result


def _user_agent() -> str:
    try:
        return f"certsms/{metadata.version('certsms')}"
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "certsms/0+unknown"


class MensatekClient:
    """A client of the Certified SMS / Contract SMS API v7 (no queue inside)."""

    FUNCTIONS = FUNCTIONS
    IDEMPOTENT = IDEMPOTENT

    def __init__(
        self,
        settings: Settings,
        *,
        session: requests.Session | None = None,
        pool_size: int = 16,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        settings.require_provider_credentials()
        assert settings.mensatek_api_user and settings.mensatek_api_token  # checked just above
        self._settings = settings
        self._auth = (settings.mensatek_api_user, settings.mensatek_api_token.get_secret_value())
        self._timeout = (settings.connect_timeout_s, settings.read_timeout_s)
        self._sleep = sleep
        self._owns_session = session is None
        self._session = session if session is not None else requests.Session()
        if self._owns_session:
            adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
            self._session.mount("https://", adapter)
            self._session.mount("http://", adapter)
        self._session.verify = True
        self._headers = {"User-Agent": _user_agent(), "Accept": "application/json, */*"}
        self.last_credits: float | None = None
        """The account's balance from the latest answer that carried ``Cred``."""

    # --- the nine functions ----------------------------------------------------------
    def send(self, req: SupportsParams) -> SendResult:
        """``EnviarSMSCERTIFICADO``: send a Certified SMS or Contract SMS (never re-posted).

        ``Report=1`` when the settings want status callbacks (``report_wanted``);
        ``Destinatarios`` as a JSON-encoded string or an array (``recipients_encoding``);
        docs/provider.md §2.1.
        """
        return SendResult.from_response(self._call("send", self.send_params(req)))

    def send_params(self, req: SupportsParams) -> dict[str, object]:
        """The parameters a send posts (without ``Resp``), as the settings shape them."""
        params = dict(req.to_params())
        if self._settings.report_wanted:
            params["Report"] = 1
        recipients = params.get("Destinatarios")
        if self._settings.recipients_encoding == "json_string" and isinstance(recipients, list):
            params["Destinatarios"] = json.dumps(
                recipients, ensure_ascii=False, separators=(",", ":")
            )
        return params

    def cancel(self, req: SupportsParams) -> CancelResult:
        """Cancel a scheduled message (``CancelarSMSCERTIFICADO``)."""
        return CancelResult.from_response(self._call("cancel", req.to_params()))

    def reschedule(self, req: SupportsParams) -> RescheduleResult:
        """Move a scheduled message to a new ``Fecha`` (``ReprogramarSMSCERTIFICADO``)."""
        return RescheduleResult.from_response(self._call("reschedule", req.to_params()))

    def report(self, req: SupportsParams) -> ReportResult:
        """Per-recipient status of a message (``GetReportSMSCERTIFICADO``)."""
        return ReportResult.from_response(self._call("report", req.to_params()))

    def upload(self, req: SupportsUpload) -> UploadResult:
        """Upload a file to the library (``CargarFichero``), BASE64 in JSON or FILES multipart."""
        params = dict(req.to_params())
        if str(req.mode).upper() != "FILES":
            return _checked(UploadResult.from_response(self._call("upload", params)))
        fields = {k: v for k, v in params.items() if k.lower() not in ("contenido", "tipo")}
        form = {k: form_value(v) for k, v in fields.items()} | {"Tipo": "FILES"}
        mime = mimetypes.guess_type(req.name)[0] or "application/octet-stream"
        files = {"Fichero": (req.name, req.content, mime)}
        return _checked(UploadResult.from_response(self._call("upload", form, files=files)))

    def list_files(self) -> ListFilesResult:
        """The files in the account's library (``ListarFicheros``); a name that breaks the v7
        rule is logged (``library_name_unusable``) and flagged by ``FileEntry.name_problem``."""
        result = ListFilesResult.from_response(self._call("list_files", {}))
        for entry in result.files:
            if entry.name_problem:
                log.warning("library_name_unusable", name=entry.name[:60], function="list_files")
        return result

    def delete_file(self, req: SupportsParams) -> DeleteFileResult:
        """Delete a library file (``BorrarFichero``)."""
        return DeleteFileResult.from_response(self._call("delete_file", req.to_params()))

    def credits(self) -> CreditsResult:
        """The account's balance (``GetCreditos``); every other answer updates it too."""
        return CreditsResult.from_response(self._call("credits", {}))

    def certificate(self, req: SupportsParams, dest: Path) -> CertificateResult:
        """Download the certificate (``GetSMSCERTIFICADO``) to ``dest`` as a ZIP (temp file +
        rename). A bare PDF answer is stored as a ZIP holding that PDF (docs/provider.md §6).

        A date-range download (``Fechainicio``/``Fechafin``) is never repeated inside
        the call: the provider blocks continuous ones (docs/provider.md §2.4).
        """
        params = req.to_params()
        retries = 0 if any(k in params for k in RANGE_PARAMS) else None
        return self._retrying(
            "certificate",
            lambda: self._download(params, Path(dest), uuid.uuid4().hex),
            retries=retries,
        )

    def close(self) -> None:
        """Close the pooled connections (only of a session this client created)."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> MensatekClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- one call ------------------------------------------------------------------------
    def _retrying(
        self, function: str, attempt: Callable[[], T], *, retries: int | None = None
    ) -> T:
        return call_with_retries(
            attempt,
            function=function,
            retries=self._settings.transport_retries if retries is None else retries,
            base_backoff_s=self._settings.transport_backoff_s,
            sleep=self._sleep,
        )

    def _call(
        self, function: str, params: Mapping[str, object], *, files: dict[str, Any] | None = None
    ) -> Answer:
        # every attempt is a new request with its own id (mensatek.retrying)
        return self._retrying(
            function, lambda: self._attempt(function, params, files, uuid.uuid4().hex)
        )

    def _attempt(
        self,
        function: str,
        params: Mapping[str, object],
        files: dict[str, Any] | None,
        request_id: str,
    ) -> Answer:
        with self._post(function, request_id, params, files=files) as response:
            try:
                body = response.content
            except requests.RequestException as exc:
                raise transport_error(exc, function, request_id) from exc
            return self._judge(function, response, body, request_id)

    def _post(
        self,
        function: str,
        request_id: str,
        params: Mapping[str, object],
        *,
        files: dict[str, Any] | None = None,
        stream: bool = False,
    ) -> requests.Response:
        url = self._settings.mensatek_base_url + self._settings.function_path(function)
        headers = {**self._headers, "X-Request-Id": request_id}
        body: dict[str, Any] = {**params, "Resp": "JSON"}
        if files is None:
            headers["Content-Type"] = "application/json; charset=utf-8"
            data: Any = json.dumps(body, ensure_ascii=False, default=str).encode("utf-8")
        else:
            data = body
        try:
            return self._session.post(
                url,
                data=data,
                files=files,
                headers=headers,
                auth=self._auth,
                timeout=self._timeout,
                stream=stream,
            )
        except requests.RequestException as exc:
            raise transport_error(exc, function, request_id) from exc

    def _judge(
        self, function: str, response: requests.Response, body: bytes, request_id: str
    ) -> Answer:
        """Map one HTTP answer to an :class:`Answer` or raise its error (via mensatek.answers)."""
        status = response.status_code
        retry_after = _retry_after(response.headers.get("Retry-After"))
        snippet = body[:200].decode("utf-8", "replace").strip() or None
        error: MensatekError | None = error_for_status(
            function,
            status,
            retry_after_s=retry_after,
            provider_text=snippet,
            request_id=request_id,
        )
        answer: Answer | None = None
        if error is None:
            try:
                answer = parse_answer(body)
            except ProviderUnavailable as exc:
                error = ProviderUnavailable(
                    f"{function}: {exc.message} (HTTP {status})",
                    retry_after_s=retry_after,
                    function=function,
                    http_status=status,
                    provider_text=exc.provider_text,
                    request_id=request_id,
                )
        if answer is not None:
            credits = answer.get_float("Cred", "Creditos")
            if credits is not None and credits >= 0:
                self.last_credits = credits
            error = error_for_answer(function, answer, http_status=status, request_id=request_id)
        (log.info if error is not None else log.debug)(
            "provider_answered",
            function=function,
            request_id=request_id,
            http_status=status,
            res=answer.get_int("Res") if answer is not None else None,
            error=type(error).__name__ if error else None,
        )
        if error is not None:
            raise error
        assert answer is not None
        return answer

    def _download(
        self, params: Mapping[str, object], dest: Path, request_id: str
    ) -> CertificateResult:
        function = "certificate"
        with self._post(function, request_id, params, stream=True) as response:
            try:
                chunks = response.iter_content(CHUNK_BYTES)
                head = read_head(chunks, 5)
                if response.status_code == 200 and looks_like_pdf(head):
                    result = store_pdf_as_zip(head, chunks, dest, params)
                    log.info(
                        "certificate_downloaded",
                        request_id=request_id,
                        size=result.size_bytes,
                        format="pdf",
                    )
                    return result
                if response.status_code == 200 and looks_like_zip(head):
                    result = store_zip(head, chunks, dest)
                    log.info(
                        "certificate_downloaded", request_id=request_id, size=result.size_bytes
                    )
                    return result
                body = head + read_capped(chunks, ERROR_BODY_MAX_BYTES)
            except requests.RequestException as exc:
                raise transport_error(exc, function, request_id) from exc
            except zipfile.BadZipFile as exc:
                raise ProviderUnavailable(
                    f"{function}: the ZIP is corrupt ({exc})",
                    function=function,
                    http_status=response.status_code,
                    request_id=request_id,
                ) from exc
            self._judge(function, response, body, request_id)  # raises the answer's error
        raise ProviderUnavailable(
            f"{function}: the answer was neither a ZIP nor an error",
            function=function,
            http_status=response.status_code,
            provider_text=body[:200].decode("utf-8", "replace"),
            request_id=request_id,
        )
