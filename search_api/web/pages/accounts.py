"""The account manager's page: regulator accounts and their synchronisation with the vendors (INT_R02)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from search_api.auth import Role
from search_api.services import WorkflowDep
from search_api.web.render import render
from search_api.web.session import WebUser, page_roles
from search_api.workflow.accounts import LABELS

router = APIRouter(include_in_schema=False)


# --- Regulator accounts (INT_R02) -----------------------------------------------------------------------------

AccountManager = Annotated[WebUser, Depends(page_roles(Role.ACCOUNT_MANAGER, Role.ADMIN))]
#: Per-vendor synchronisation states (``mappings/accounts.py``) as managers read them.
SYNC_LABELS = {"synced": "À jour", "failed": "Échec, nouvel essai à la prochaine connexion ou modification",
               "rejected": "Refusé par l’éditeur, renvoyé quand le compte sera modifié",
               "blocked": "Non transmis : compte incomplet"}


def missing_sentence(missing: list[str]) -> str:
    """``Non transmis aux éditeurs : il manque le prénom et l’adresse e-mail (…)`` for the accounts page."""

    labels = [LABELS.get(m, m) for m in missing]
    listed = labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " et " + labels[-1]
    pronoun = "l’exige" if len(labels) == 1 else "les exige"
    return (f"Non transmis aux éditeurs : il manque {listed} (le profil FrPractitionerRegul {pronoun}). "
            "Le compte leur sera transmis dès qu’il sera complété.")


@router.get("/app/comptes", response_class=HTMLResponse)
def accounts_page(request: Request, user: AccountManager, workflow: WorkflowDep, bloques: bool = False) -> Response:
    accounts = workflow.accounts.list_managed(user.principal, blocked=bloques, size=200)
    return render(request, "accounts.html", user=user, accounts=accounts, bloques=bloques,
                  missing_sentence=missing_sentence, SYNC_LABELS=SYNC_LABELS)
