"""The TLS context of the Talon.One transport: a private CA bundle in place of the system's
trust store, and a client certificate for deployments that require one (mutual TLS)."""

from __future__ import annotations

import ssl
from pathlib import Path

from talon_stream._exceptions import ConfigurationError

__all__ = ["client_ssl_context"]


def client_ssl_context(
    *,
    ca_file: Path | None = None,
    cert_file: Path | None = None,
    key_file: Path | None = None,
    setting_prefix: str = "TALON_STREAM_TALON_",
) -> ssl.SSLContext | None:
    """A verifying client context that trusts the CAs of ``ca_file`` only (PEM; the system's
    store when unset) and presents ``cert_file`` with ``key_file`` (PEM; the key may be in the
    certificate file). ``None`` when nothing is set: the transport's default context applies.

    Raises:
        ConfigurationError: a file is missing or unreadable, is not PEM of the right kind, the
            key does not match the certificate, or a key is given without a certificate. The
            message names the setting to fix.
    """
    if ca_file is None and cert_file is None and key_file is None:
        return None
    if key_file is not None and cert_file is None:
        raise ConfigurationError(
            f"{setting_prefix}CLIENT_KEY_FILE is set without {setting_prefix}CLIENT_CERT_FILE: "
            "a client key is only used with its certificate"
        )
    files = (("CA_FILE", ca_file), ("CLIENT_CERT_FILE", cert_file), ("CLIENT_KEY_FILE", key_file))
    for name, path in files:
        if path is not None:
            _readable(path, setting_prefix + name)
    try:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except ssl.SSLError as exc:
        raise ConfigurationError(
            f"{setting_prefix}CA_FILE ({ca_file}) holds no usable PEM certificate ({exc.reason}): "
            "give a PEM bundle of the CA certificates that sign Talon.One's server certificate"
        ) from exc
    if cert_file is not None:
        try:
            # An encrypted key would make OpenSSL ask for its password on the terminal.
            context.load_cert_chain(
                str(cert_file), str(key_file) if key_file else None, password=_no_password
            )
        except ssl.SSLError as exc:
            raise ConfigurationError(
                f"{setting_prefix}CLIENT_CERT_FILE ({cert_file})"
                + (f" and {setting_prefix}CLIENT_KEY_FILE ({key_file})" if key_file else "")
                + f" are not a PEM certificate and its unencrypted private key ({exc.reason})"
                + ("" if key_file else f": set {setting_prefix}CLIENT_KEY_FILE if the key is apart")
            ) from exc
    return context


def _no_password() -> bytes:
    return b""


def _readable(path: Path, setting: str) -> None:
    try:
        with path.open("rb") as stream:
            stream.read(1)
    except OSError as exc:
        raise ConfigurationError(f"{setting} ({path}) cannot be read: {exc.strerror}") from exc
