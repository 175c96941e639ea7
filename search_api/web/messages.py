"""What the pages say when something goes wrong: French, and what to do (operators read French, not tracebacks).

The JSON API keeps its English messages (integrators read them); the pages translate here, in one place:
``french(exc)`` turns a platform error into a French sentence (a known message by its pattern, any other by
its kind), ``validation_message`` turns a pydantic validation error into French field messages, and
``technical_markers`` finds English or technical text (the page tests use it too, so the rule is written once).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from sas_core.errors import (
    BackendTimeout,
    BackendUnavailable,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    SasError,
    TooManyRequests,
    Unauthenticated,
    Unprocessable,
)

#: English words and technical fragments that must never reach a page (whole words, case-insensitive), and
#: patterns of Python or JSON internals (reprs, validation reports, tracebacks).
ENGLISH_WORDS = ("error", "errors", "invalid", "must", "cannot", "unknown", "allowed", "already", "please", "retry",
                 "the", "is", "are", "not", "found", "give", "should", "expected", "value", "field", "required",
                 "failed", "missing", "exceed", "exceeds", "got", "your", "this", "only", "with", "without",
                 "period", "slot", "slots", "offer", "items", "input", "none", "null", "true", "false", "forbidden",
                 "unprocessable", "conflict", "replayed", "vendor", "between", "after", "before")
TECHNICAL_PATTERNS = (r"pydantic", r"Traceback", r"errors\.pydantic\.dev", r"\w+=['\"]", r"\[\s*'", r"\{\s*'",
                      r"\(\s*'", r"\[\d+(,\s*\d+)*\]", r"\w+Error\b", r"Exception", r"Errno", r"input_value",
                      r"type=\w+", r"\bid\s*=")
_WORDS = re.compile(r"\b(" + "|".join(ENGLISH_WORDS) + r")\b", re.IGNORECASE)
_TECHNICAL = re.compile("|".join(TECHNICAL_PATTERNS))


def technical_markers(text: str) -> list[str]:
    """The English words and technical fragments found in ``text`` (empty: fit for a page)."""
    return [m.group(0) for m in _WORDS.finditer(text)] + [m.group(0) for m in _TECHNICAL.finditer(text)]


# --- Known messages of the services, by pattern -------------------------------------------------------------

STATUS_WORDS = {"oriented": "orientée", "booked": "réservée", "pending": "en attente", "fulfilled": "honorée",
                "noshow": "non honorée", "cancelled": "annulée"}

_Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]


def _rule(pattern: str, answer: str | Callable[[re.Match[str]], str]) -> _Rule:
    return re.compile(pattern, re.IGNORECASE), (answer if callable(answer) else (lambda _m, a=answer: a))


PLACE_UNKNOWN = "Lieu introuvable : saisissez un code postal, le nom d'une commune ou une adresse avec sa commune."
SLOT_GONE = ("Ce créneau n'est plus disponible (il vient d'être pris ou retiré) : relancez la recherche et "
             "choisissez-en un autre.")
RELOAD = "rechargez la page puis recommencez."

RULES: list[_Rule] = [
    # Search: where to search.
    _rule(r"^cannot place q=", PLACE_UNKNOWN),
    _rule(r"^unknown postcode '(\w+)'", lambda m: f"Le code postal {m.group(1)} n'existe pas : vérifiez-le ou "
                                               "saisissez le nom de la commune."),
    _rule(r"^q is empty", "Saisissez une adresse, un code postal ou le nom d'une commune."),
    _rule(r"^q is too long", "Adresse trop longue (200 caractères au plus) : raccourcissez-la."),
    _rule(r"insee|INSEE", "Code commune INSEE inconnu : saisissez le code postal ou le nom de la commune."),
    _rule(r"window is entirely in the past", "Cette période est passée : choisissez une fenêtre à venir."),
    _rule(r"window may not exceed (\d+) days", lambda m: f"La fenêtre de recherche dure au plus {m.group(1)} jours : "
                                                       "réduisez-la."),
    _rule(r"page × size may not exceed",
          "Trop de résultats demandés : affinez les filtres (ou utilisez l'export CSV)."),
    _rule(r"^unknown (\w+) .*allowed values", "Valeur de filtre inconnue : choisissez-la dans la liste proposée."),
    # Dates.
    _rule(r"must be between years (\d+) and (\d+)", lambda m: f"Date hors limites : choisissez une date entre "
                                                             f"{m.group(1)} et {m.group(2)}."),
    _rule(r"must be an ISO 8601", "Date invalide : saisissez-la au format JJ/MM/AAAA."),
    _rule(r"^'to' must be after 'from'", "La date de fin doit suivre la date de début : corrigez les dates."),
    # Platform agenda.
    _rule(r"^items \[.*\] are already over", "Ce créneau est déjà passé : choisissez une date et une heure à venir."),
    _rule(r"start more than (\d+) days ahead", lambda m: f"Ce créneau commence dans plus de {m.group(1)} jours : "
                                                       "publiez-le plus près de sa date."),
    _rule(r"at most (\d+) slots or time ranges per call", lambda m: f"Au plus {m.group(1)} créneaux à la fois : "
                                                                  "publiez-les en plusieurs fois."),
    _rule(r"already holds (\d+) future slots", lambda m: f"Ce lieu a déjà {m.group(1)} créneaux à venir, le maximum : "
                                                       "supprimez-en avant d'en publier d'autres."),
    _rule(r"fed by the vendor", "L'agenda de ce lieu est tenu par votre logiciel de rendez-vous : publiez vos "
                                "créneaux dans ce logiciel."),
    _rule(r"^no platform-agenda slot", "Ce créneau n'existe plus : " + RELOAD),
    _rule(r"own offers only|own slots only|this place is not yours", "Ce lieu d'exercice n'est pas le vôtre : "
                                                                       "choisissez un de vos lieux."),
    _rule(r"^offer .* does not exist|^no practice place",
          "Ce lieu d'exercice n'existe plus dans l'annuaire : " + RELOAD),
    # Declarations: practitioners' unavailability.
    _rule(r"at most (\d+) unavailability periods per place: (\d+) already",
          lambda m: f"Au plus {m.group(1)} périodes d'indisponibilité par lieu ({m.group(2)} déjà déclarées) : "
                    "annulez-en une d'abord."),
    _rule(r"^give at least one period", "Indiquez la date de début (et la date de fin, sauf durée indéterminée)."),
    _rule(r"need an offset", "Date incomplète : saisissez la date et l'heure."),
    _rule(r"must end after it starts", "La date de fin doit suivre la date de début : corrigez les dates."),
    _rule(r"must not be over already", "Cette période est déjà passée : choisissez des dates à venir."),
    _rule(r"must not overlap", "Cette période chevauche une indisponibilité déjà déclarée : annulez celle-ci ou "
                               "choisissez d'autres dates."),
    _rule(r"^only a practitioner", "Seul un professionnel connecté avec son numéro RPPS déclare ses indisponibilités."),
    _rule(r"^no declaration", "Cette déclaration n'existe plus ou ne vous est pas visible : " + RELOAD),
    # Declarations: regulators' reports.
    _rule(r"say what the problem is in 'comment'", "Décrivez le problème dans le champ « Commentaire », puis "
                                                   "envoyez à nouveau le signalement."),
    _rule(r"^kind must be", "Choisissez le motif du signalement."),
    _rule(r"report lasts at most (\d+) h", lambda m: f"Un signalement d'indisponibilité dure au plus {m.group(1)} h : "
                                                   "choisissez une fin plus proche (le professionnel déclare "
                                                   "lui-même les absences plus longues)."),
    _rule(r"needs an end", "Indiquez la fin de l'indisponibilité signalée."),
    _rule(r"at most (\d+) reports per hour", lambda m: f"Vous avez déjà fait {m.group(1)} signalements dans l'heure : "
                                                     "réessayez plus tard ou prévenez les responsables du territoire."),
    _rule(r"one of your reports is being filed", "Un de vos signalements est en cours d'envoi : attendez qu'il soit "
                                                 "enregistré puis recommencez."),
    _rule(r"this place belongs to (\S+), not to your territories",
          lambda m: f"Ce lieu relève du territoire {m.group(1).rstrip(',')}, pas des vôtres : demandez à ce SAS de "
                    "faire le signalement."),
    _rule(r"^only regulators and OSNP report", "Seuls les régulateurs et les OSNP signalent un professionnel."),
    # Bookings.
    _rule(r"^slot .* not found", SLOT_GONE),
    _rule(r"fully booked|was just taken|no longer free", SLOT_GONE),
    _rule(r"^this slot is over", "Ce créneau est passé : relancez la recherche et choisissez-en un autre."),
    _rule(r"walk-in", "Ce créneau est sans rendez-vous : adressez le patient au cabinet sans réserver."),
    _rule(r"Idempotency-Key was already used", "Ce bouton a déjà servi à une autre réservation : " + RELOAD),
    _rule(r"is in progress; retry|too many simultaneous bookings", "Une réservation de ce créneau est en cours : "
                                                                   "réessayez dans un instant."),
    _rule(r"does not let the platform create appointments|no booking link",
          "Ce créneau ne se réserve pas depuis la plateforme : appelez le cabinet."),
    _rule(r"did not confirm the slot in time", "Le logiciel de rendez-vous n'a pas confirmé le créneau à temps : "
                                               "réessayez dans un instant."),
    _rule(r"refused the appointment", "Le logiciel de rendez-vous a refusé le rendez-vous : choisissez un autre "
                                      "créneau ou appelez le cabinet."),
    _rule(r"does not accept patients beyond", "Ce professionnel ne prend pas de patients en sus de ses "
                                              "disponibilités : choisissez-en un autre."),
    # Orientations.
    _rule(r"^no orientation", "Cette orientation n'existe plus ou ne vous est pas visible : " + RELOAD),
    _rule(r"orientation is (\w+): it cannot be marked honoured",
          lambda m: f"Cette orientation est {STATUS_WORDS.get(m.group(1), 'close')} : elle ne peut plus être "
                    "marquée honorée."),
    _rule(r"orientation is (\w+): it cannot be cancelled",
          lambda m: f"Cette orientation est {STATUS_WORDS.get(m.group(1), 'close')} : elle ne peut plus être annulée."),
    _rule(r"is being changed by others", "Cette orientation est modifiée en ce moment : réessayez dans un instant."),
    _rule(r"^only the practitioner concerned", "Seul le professionnel concerné confirme cette consultation."),
    # CPTS, login.
    _rule(r"^no CPTS with id", "Cette CPTS n'est pas dans l'annuaire : revenez à la recherche."),
    _rule(r"not a territory code: '([^']*)'", lambda m: f"« {m.group(1)[:20]} » n'est pas un code de territoire : "
                                                       "saisissez par exemple SAS-33 (plusieurs : séparés par "
                                                       "des espaces)."),
    _rule(r"is not a valid Role", "Choisissez un rôle dans la liste."),
    _rule(r"identity provider refused", "Le fournisseur d'identité a refusé la connexion : recommencez ou "
                                        "contactez l'administrateur."),
    _rule(r"authorisation code refused by the identity provider", "Le fournisseur d'identité a refusé le code de "
                                                                  "connexion : recommencez la connexion."),
    _rule(r"identity provider unreachable|identity provider answered|token endpoint answered",
          "Le fournisseur d'identité ne répond pas correctement : réessayez dans un instant."),
    _rule(r"login expired|login state mismatch", "La connexion a expiré ou a été commencée dans une autre fenêtre : "
                                                 "recommencez."),
]

#: The French sentence of an error whose message is not known, by its kind (the most specific first).
BY_KIND: list[tuple[type[SasError], str]] = [
    (Unauthenticated, "Votre session a expiré : reconnectez-vous."),
    (Forbidden, ("Cette action ne vous est pas permise avec votre rôle ou vos territoires : demandez-la à un "
                 "responsable de votre SAS.")),
    (NotFound, "Élément introuvable (il a peut-être été supprimé) : " + RELOAD),
    (Conflict, "Cet élément vient d'être modifié par quelqu'un d'autre : " + RELOAD),
    (TooManyRequests, "Trop de demandes en peu de temps : attendez un instant puis recommencez."),
    (PayloadTooLarge, "Formulaire trop volumineux : raccourcissez le texte saisi."),
    (BackendUnavailable, "Service momentanément indisponible : réessayez dans un instant."),
    (BackendTimeout, "Le service a mis trop de temps à répondre : réessayez dans un instant."),
    (BadRequest, "Saisie incorrecte : vérifiez les champs du formulaire et recommencez."),
    (Unprocessable, "Saisie incorrecte : vérifiez les champs du formulaire et recommencez."),
]
FALLBACK = "Une erreur est survenue : réessayez ; si elle se répète, prévenez l'administrateur de la plateforme."


def french(error: SasError | str | Exception) -> str:
    """The French sentence a page shows for ``error`` (a platform error, an exception or a message)."""
    message = error.message if isinstance(error, SasError) else str(error)
    for pattern, answer in RULES:
        found = pattern.search(message)
        if found:
            return answer(found)
    if message and not technical_markers(message):
        return message[:1].upper() + message[1:]        # the pages' own messages are already French
    if isinstance(error, SasError):
        for kind, sentence in BY_KIND:
            if isinstance(error, kind):
                return sentence
    return FALLBACK


# --- Pydantic validation errors as field messages -----------------------------------------------------------

#: Validator messages of our own models (``model_validator``) in French.
VALIDATOR_MESSAGES = [
    (re.compile(r"end must be after start"), "l'heure de fin doit suivre l'heure de début"),
    (re.compile(r"12 hours at most"), "un créneau ou une plage dure 12 heures au plus"),
    (re.compile(r"need a UTC offset"), "indiquez la date et l'heure"),
    (re.compile(r"between years (\d+) and (\d+)"), "choisissez une date entre {0} et {1}"),
]


def _field_problem(error: Mapping[str, Any]) -> str:
    kind, ctx = error.get("type", ""), error.get("ctx") or {}
    by_type = _problem_of_type(kind, ctx)
    if by_type is not None:
        return by_type
    return _validator_problem(str(ctx.get("error") or error.get("msg") or ""))


def _problem_of_type(kind: str, ctx: dict) -> str | None:
    """Pydantic's own error types in French; None: a validator's message (``_validator_problem``)."""
    if kind in ("missing", "string_too_short") and not ctx.get("min_length", 0) > 1:
        return "à remplir"
    if kind in ("greater_than_equal", "greater_than"):
        return f"au moins {ctx.get('ge', ctx.get('gt'))}"
    if kind in ("less_than_equal", "less_than"):
        return f"au plus {ctx.get('le', ctx.get('lt'))}"
    if kind in ("int_parsing", "int_type", "int_from_float", "float_parsing"):
        return "un nombre entier est attendu"
    if kind in ("string_too_long", "too_long"):
        return f"trop long ({ctx.get('max_length')} au plus)"
    if kind in ("too_short", "string_too_short"):
        return f"trop court ({ctx.get('min_length')} au moins)"
    if kind.startswith(("datetime", "date", "time")):
        return "date ou heure invalide"
    if kind in ("literal_error", "enum"):
        return "choisissez une valeur de la liste"
    return None


def _validator_problem(text: str) -> str:
    for pattern, french_text in VALIDATOR_MESSAGES:
        found = pattern.search(text)
        if found:
            return french_text.format(*found.groups())
    return "valeur incorrecte"


#: Query parameters of the pages, as the pages name them (a hand-edited address: ``?page=0``).
QUERY_LABELS = {"page": "Page", "jours": "Nombre de jours", "specialite": "Spécialité", "fenetre": "Fenêtre",
                "reservables": "Réservables seulement", "en_sus": "En sus", "actives": "Actives seulement",
                "bloques": "Comptes bloqués", "q": "Adresse"}


def validation_message(error: ValidationError | Sequence[Any], *, labels: dict[str, str],
                       subject: str = "Saisie") -> str:
    """``Créneau non publié : Capacité : au plus 100 ; …`` — one French phrase per problem, fields by their form
    labels (``labels``: model field → label; problems of the whole model have no field)."""
    problems: list[str] = []
    for item in (error.errors() if isinstance(error, ValidationError) else error):
        fields = [str(p) for p in item.get("loc", ()) if isinstance(p, str)]
        label = next((labels[f] for f in reversed(fields) if f in labels), None)
        problem = _field_problem(item)
        phrase = f"{label} : {problem}" if label else problem
        if phrase not in problems:
            problems.append(phrase)
    return f"{subject} : " + " ; ".join(problems) + "." if problems else f"{subject} : vérifiez les champs."


# --- The harvest's own diagnostics (the admin's harvest-health page) ------------------------------------------

_HARVEST_RULES: list[_Rule] = [
    _rule(r"^(\d+) of (\d+) batches failed", lambda m: f"{m.group(1)} lot(s) de requêtes sur {m.group(2)} en échec : "
          "leurs créneaux sont conservés et marqués périmés ; l'éditeur sera relancé à la prochaine collecte."),
    _rule(r"^mass deletion held: (\d+) slots", lambda m: f"{m.group(1)} créneaux que l'éditeur n'envoyait plus ont "
          "été conservés (marqués périmés) au lieu d'être supprimés : vérifiez sa réponse."),
    _rule(r"^bulk request failed", "Écriture dans Elasticsearch refusée : vérifiez l'état du cluster."),
    _rule(r"circuit breaker|breaker open", "L'éditeur ne répond plus (coupe-circuit ouvert) : la collecte reprend "
          "d'elle-même dès qu'il répond."),
    _rule(r"timed? ?out|timeout", "L'éditeur n'a pas répondu à temps : la collecte reprend à la prochaine exécution."),
    _rule(r"\b(5\d\d)\b", lambda m: f"L'éditeur a répondu en erreur (HTTP {m.group(1)}) : la collecte reprend à la "
          "prochaine exécution ; prévenez-le si cela dure."),
    _rule(r"ssl|tls|certificate", "Échec de la connexion sécurisée à l'éditeur (certificat) : vérifiez les "
          "certificats de l'éditeur et de la plateforme."),
]

HARVEST_UNKNOWN = "Erreur de collecte : le détail technique (en anglais) suit, pour l'équipe d'exploitation."


def harvest_diagnostic(text: str | None) -> dict:
    """A run's error in French for the harvest-health page: ``{"french", "technical"}``. The raw text is kept
    as ``technical`` (shown quoted, marked as English) only when no rule describes it."""
    if not text:
        return {"french": "", "technical": None}
    for pattern, answer in _HARVEST_RULES:
        match = pattern.search(text)
        if match:
            return {"french": answer(match), "technical": None}
    return {"french": HARVEST_UNKNOWN, "technical": text}
