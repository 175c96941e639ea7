"""A throw-away public key infrastructure for the conformance tests, built with ``cryptography``: an
authority standing for IGC-Santé, the listener's server certificate, vendor client certificates with
the subject fields the guide checks (CN, OU), revocation lists, and a second, foreign authority."""

from __future__ import annotations

import ipaddress
import os
import ssl
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path
    serial: int


class Authority:
    """A root CA writing its certificates and CRLs under ``folder``."""

    def __init__(self, folder: Path, name: str) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.name = name
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
                             x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
                             x509.NameAttribute(NameOID.COMMON_NAME, f"{name} root")])
        self.certificate = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(self._key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(_now() - timedelta(days=30)).not_valid_after(_now() + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256()))
        self.cert_path = folder / "ca.pem"
        self.cert_path.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))

    def issue(self, label: str, *, cn: str, ou: str | None = None, server: bool = False,
              not_before: datetime | None = None, not_after: datetime | None = None) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"{label} organisation")]
        if ou is not None:
            attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
        serial = x509.random_serial_number()
        builder = (
            x509.CertificateBuilder().subject_name(x509.Name(attributes)).issuer_name(self.certificate.subject)
            .public_key(key.public_key()).serial_number(serial)
            .not_valid_before(not_before or _now() - timedelta(days=1))
            .not_valid_after(not_after or _now() + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                                  else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        certificate = builder.sign(self._key, hashes.SHA256())
        cert_path, key_path = self.folder / f"{label}.pem", self.folder / f"{label}.key"
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return Issued(cert=cert_path, key=key_path, serial=serial)

    def write_crl(self, path: Path, revoked: list[int]) -> None:
        """Write a CRL listing ``revoked`` serials, atomically (a reader never sees half a file)."""
        builder = (x509.CertificateRevocationListBuilder().issuer_name(self.certificate.subject)
                   .last_update(_now() - timedelta(minutes=5)).next_update(_now() + timedelta(days=7))
                   .add_extension(x509.CRLNumber(int(_now().timestamp() * 1000)), critical=False))
        for serial in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(_now() - timedelta(minutes=1))
                .build())
        crl = builder.sign(self._key, hashes.SHA256())
        scratch = path.with_suffix(".tmp")
        scratch.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
        os.replace(scratch, path)


def client_context(ca: Authority, issued: Issued | None, *, minimum: ssl.TLSVersion | None = None,
                   maximum: ssl.TLSVersion | None = None, legacy: bool = False) -> ssl.SSLContext:
    """A client trusting ``ca`` and presenting ``issued``. ``legacy``: allow TLS 1.0/1.1 handshakes at
    all (OpenSSL 3 refuses them at its default security level, which would test the client, not us)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=str(ca.cert_path))
    if legacy:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    with warnings.catch_warnings():
        # Setting TLS 1.0 / 1.1 is deprecated: here it is the point (the probes of refused versions).
        warnings.simplefilter("ignore", DeprecationWarning)
        if minimum is not None:
            context.minimum_version = minimum
        if maximum is not None:
            context.maximum_version = maximum
    if issued is not None:
        context.load_cert_chain(str(issued.cert), str(issued.key))
    return context
