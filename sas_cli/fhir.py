"""``sas fhir serve``: the INT_R03 listener (vendors report appointments) over mutual TLS."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from sas_core.errors import SasError
from sas_core.settings import Settings

app = typer.Typer(no_args_is_help=True, help="INT_R03: the FHIR Appointment server for vendors (mutual TLS).")
console = Console()


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="listen address (SAS_FHIR_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="listen port (SAS_FHIR_PORT)")] = None,
) -> None:
    """Serve POST/PUT /fhir/Appointment on HTTPS (TLS 1.2 at least), requiring a client certificate
    signed by SAS_FHIR_TLS_CLIENT_CA, not revoked in SAS_FHIR_TLS_CLIENT_CRL (re-read when it changes),
    whose CN and OU are listed in SAS_FHIR_CLIENT_SUBJECTS (SAS_FHIR_TLS_CERT / SAS_FHIR_TLS_KEY: the
    server's own)."""
    import uvicorn

    from sas_core.logging import configure_logging
    from search_api.routes.fhir import create_fhir_app
    from search_api.tls import fhir_server_config

    settings = Settings()
    configure_logging(level=settings.log_level, json_format=settings.log_json)
    try:
        config = fhir_server_config(create_fhir_app(settings), settings, host=host, port=port)
    except SasError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from None
    console.print(f"INT_R03 listener on https://{config.host}:{config.port}/fhir (client certificates required, "
                  f"{len(settings.fhir_client_subjects)} accepted subject(s))")
    uvicorn.Server(config).run()
