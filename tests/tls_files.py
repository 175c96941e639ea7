"""PEM files of a throw-away PKI for a simulated vendor behind mutual TLS: a CA, the vendor's server
certificate (127.0.0.1 / localhost) and the platform's client certificate."""

from __future__ import annotations

from pathlib import Path

import trustme


def vendor_tls_files(folder: Path) -> dict[str, Path]:
    """``ca``, ``server_cert``, ``server_key``, ``client_cert``, ``client_key`` written under ``folder``."""
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("sas-platform.example", common_name="sas-platform")
    paths: dict[str, Path] = {}
    for label, blob in {"ca": ca.cert_pem, "server_cert": server.cert_chain_pems[0],
                        "server_key": server.private_key_pem, "client_cert": client.cert_chain_pems[0],
                        "client_key": client.private_key_pem}.items():
        paths[label] = folder / f"{label}.pem"
        blob.write_to_path(str(paths[label]))
    return paths
