"""Secrets for containers dockyard runs (train, serve): read-only FILES under /run/secrets,
never environment variables, image layers or log lines."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .engine import Secret
from .errors import UsageError
from .runtime.contract import SECRETS_DIR, USER_GID, USER_UID


def check_secrets(secrets: Sequence[Secret]) -> None:
    ids = [s.id for s in secrets]
    for sid in ids:
        if sid in (".", "..") or ids.count(sid) > 1:
            why = "is given twice" if ids.count(sid) > 1 else f"would become {SECRETS_DIR}/{sid}"
            raise UsageError(f"secret id {sid!r} {why}",
                             "give each secret its own name, e.g. --secret id=hf_token,env=HF_TOKEN")
    secret_values(secrets)  # every value readable now, not after a long build


def secret_file(directory: Path, secret: Secret) -> Path:
    """A private copy of the secret, readable only by the container user; deleted after the run."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    value = secret_bytes(secret)
    target = directory / secret.id
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(value)
    if os.geteuid() == 0:
        os.chown(target, USER_UID, USER_GID)
        os.chmod(target, 0o400)
    else:  # the container user is someone else; the 0700 parent keeps other host users out
        os.chmod(target, 0o444)
    return target


def secret_bytes(secret: Secret) -> bytes:
    if secret.src:
        try:
            return Path(secret.src).read_bytes()
        except OSError as exc:
            raise UsageError(f"secret {secret.id!r}: cannot read {secret.src}: {exc.strerror}",
                             "point src= at a readable file") from None
    value = os.environ.get(secret.env or "")
    if value is None:
        raise UsageError(f"secret {secret.id!r}: environment variable {secret.env} is not set",
                         f"export {secret.env}=...")
    return value.encode()


def secret_values(secrets: Sequence[Secret]) -> list[str]:
    """Every text a log line must never show: whole values and their single lines."""
    values: set[str] = set()
    for secret in secrets:
        text = secret_bytes(secret).decode("utf-8", "replace").strip()
        values |= {v for v in [text, *text.splitlines()] if len(v.strip()) >= 3}
    return sorted(values, key=len, reverse=True)
