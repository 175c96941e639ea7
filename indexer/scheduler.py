"""The background scheduler (APScheduler) that ``sas serve`` runs beside the API.

Jobs are registered by the capabilities that need them (directory refresh, vendor harvests); each
job gets the settings and an Elasticsearch client, never the API.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from apscheduler.schedulers.background import BackgroundScheduler
from elasticsearch import Elasticsearch

from sas_core.settings import Settings

log = logging.getLogger(__name__)

#: Functions that add jobs to a scheduler: ``register(scheduler, settings=..., es=...)``.
JobRegistrar = Callable[..., None]
_REGISTRARS: list[JobRegistrar] = []


def job_registrar(func: JobRegistrar) -> JobRegistrar:
    """Decorator: ``func`` adds its jobs to every scheduler built afterwards."""
    _REGISTRARS.append(func)
    return func


def build_scheduler(*, settings: Settings, es: Elasticsearch) -> BackgroundScheduler:
    """A scheduler with every registered job added (not started)."""
    scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
    for register in _REGISTRARS:
        register(scheduler, settings=settings, es=es)
    log.info("scheduler built with %d job(s)", len(scheduler.get_jobs()))
    return scheduler
