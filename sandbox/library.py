"""The file library: CargarFichero, ListarFicheros, BorrarFichero (docs/provider.md §2.6–2.8).

Names: the v7 text says "a maximum of 15 characters (only letters and numbers)"
and "must include the extension"; the v5 library said 15 *without* the extension
and stripped other characters. Lenient (default): the v5 rule, other characters
stripped, the stem cut to 15, the final name returned in ``Nombre``. ``strict``:
the v7 text read literally (the whole name, extension included, ≤ 15, letters
and digits and one dot), anything else refused with ``Res -3`` (see
:mod:`sandbox.strict`). The same name overwrites (``Sobrescrito=1``).

Quotas are unknown at the provider: ``library_max_files``/``library_max_bytes``
(-10) and ``library_max_file_bytes`` (-16) are configurable; inline
``(BASE64:…)`` PDFs of sends are listed but outside the quota ("do not affect
this quota"). ``trial_account`` makes every upload answer -18 (trial accounts
cannot upload files).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from certsms.sandbox import strict
from certsms.sandbox.clock import to_provider
from certsms.sandbox.parsing import ParamError, ParsedRequest, decode_base64
from certsms.sandbox.rendering import Answer
from certsms.sandbox.state import LibraryFile

if TYPE_CHECKING:
    from certsms.sandbox.core import SandboxCore

ALLOWED_EXTENSIONS = frozenset({"pdf", "doc", "docx", "xls", "xlsx", "vcf"})
IMAGE_EXTENSIONS = frozenset({"gif", "png", "jpg", "jpeg"})


def clean_name(raw: str) -> str | None:
    """The library name for ``raw`` (alphanumeric stem ≤ 15 + extension), None if empty."""
    base = raw.replace("\\", "/").rsplit("/", 1)[-1].strip()
    stem, dot, ext = base.rpartition(".")
    if not dot:
        return None
    stem = re.sub(r"[^A-Za-z0-9]", "", stem)[:15]
    ext = re.sub(r"[^A-Za-z0-9]", "", ext)
    return f"{stem}.{ext}" if stem and ext else None


def upload(core: SandboxCore, req: ParsedRequest, user: str) -> Answer:
    """CargarFichero (Tipo=BASE64 with Contenido, or Tipo=FILES with the part Fichero)."""
    account = core.state.account(user)
    config = core.config

    def error(res: int, text: str, name: str | None = None) -> Answer:
        fields: dict[str, object] = {"Res": res}
        if name:
            fields["Nombre"] = name
        return Answer({**fields, "Error": text, "Cred": account.credits}, outcome="error")

    if config.trial_account:
        return error(-18, "Trial accounts cannot upload files", req.text("Nombre"))
    mode = (req.text("Tipo") or "").upper()
    if mode not in {"BASE64", "FILES"}:
        return error(-15, "Tipo must be FILES or BASE64")
    raw_name = req.text("Nombre")
    if mode == "BASE64":
        if raw_name is None:
            return error(-3, "Required parameter is missing: Nombre")
        contenido = req.text("Contenido")
        if contenido is None:
            return error(-12, "Tipo BASE64 but no Contenido")
        try:
            content = decode_base64(contenido)
        except ParamError as exc:
            return error(-17, str(exc), raw_name)
    else:
        part = req.files.get("fichero")
        if part is None:
            return error(-13, "Tipo FILES but no file in the part Fichero")
        content = part.content
        raw_name = raw_name or part.filename
    if config.strict:
        problem = strict.library_name_problem(raw_name or "")
        if problem is not None:
            text = f"Nombre {raw_name!r}: {problem}"
            return strict.refusal("library_name", text, Cred=account.credits)
    name = clean_name(raw_name or "")
    if name is None:
        return error(-3, "Nombre must have letters or digits and an extension", raw_name)
    ext = name.rsplit(".", 1)[1].lower()
    if ext in IMAGE_EXTENSIONS:
        return error(-14, "Images go to the image library (GIF, PNG, JPG)", name)
    if ext not in ALLOWED_EXTENSIONS or (ext == "pdf" and not content.startswith(b"%PDF")):
        return error(-11, "File format not allowed (PDF, Excel, Word, VCF)", name)
    if not content:
        return error(-12, "The file is empty", name)
    if len(content) > config.library_max_file_bytes:
        return error(-16, "File too large", name)
    key = name.lower()
    existing = account.files.get(key)
    others = [f for k, f in account.files.items() if k != key and not f.inline]
    if len(others) + 1 > config.library_max_files or (
        sum(len(f.content) for f in others) + len(content) > config.library_max_bytes
    ):
        return error(-10, "Storage capacity exceeded: contact support for more space", name)
    auto_delete = (req.text("Autoborrado") or "").lower() in {"si", "sí", "1", "yes", "true"}
    account.files[key] = LibraryFile(name, content, core.clock.now(), auto_delete)
    return Answer(
        {
            "Res": 1,
            "Nombre": name,
            "Sobrescrito": int(existing is not None),
            "Cred": account.credits,
        }
    )


def list_files(core: SandboxCore, req: ParsedRequest, user: str) -> Answer:
    """ListarFicheros."""
    account = core.state.account(user)
    rows = [
        {"Fecha": to_provider(f.uploaded_at), "Nombre": f.name, "Ext": f.ext}
        for f in sorted(account.files.values(), key=lambda f: (f.uploaded_at, f.name))
    ]
    return Answer({"Res": 1, "Ficheros": rows, "Cred": account.credits})


def delete_file(core: SandboxCore, req: ParsedRequest, user: str) -> Answer:
    """BorrarFichero (``Nombre``; the v5 name ``Fichero`` is accepted too)."""
    account = core.state.account(user)
    name = req.text("Nombre") or req.text("Fichero")
    if name is None:
        text = "Required parameter is missing: Nombre"
        return Answer({"Res": -3, "Error": text, "Cred": account.credits}, outcome="error")
    if account.files.pop(name.lower(), None) is None:
        text = "The file does not exist"
        return Answer({"Res": -2, "Error": text, "Cred": account.credits}, outcome="error")
    return Answer({"Res": 1, "Cred": account.credits})
