"""Naming things on the command line (pure): a uuid or id, a name label, or a unique prefix of
either. An exact id wins, then an exact name, then a unique prefix; several matches are an error
that lists them (code ``<KIND>_AMBIGUOUS``), none is ``<KIND>_NOT_FOUND``.
"""

from typing import Any, List, NamedTuple, Sequence

from xscontainer.errors import InvalidArgument, NotFound

MAX_LISTED = 10


class Candidate(NamedTuple):
    key: str  # the uuid or the full id
    name: str  # the name label or the container name ("" when it has none)
    value: Any  # what the caller gets back


def describe(candidate: Candidate) -> str:
    return "%s (%s)" % (candidate.name, candidate.key) if candidate.name else candidate.key


def _ambiguous(kind: str, query: str, found: Sequence[Candidate], key_name: str) -> NotFound:
    listed = ", ".join(describe(c) for c in found[:MAX_LISTED])
    more = " and %d more" % (len(found) - MAX_LISTED) if len(found) > MAX_LISTED else ""
    return NotFound("%r names %d %ss: %s%s; give more of the %s or the full name."
                    % (query, len(found), kind, listed, more, key_name),
                    code="%s_AMBIGUOUS" % kind.upper().replace(" ", "_"),
                    candidates=[c.key for c in found])


def _unique(found: List[Candidate]) -> List[Candidate]:
    seen = set()
    result = []
    for candidate in found:
        if candidate.key not in seen:
            seen.add(candidate.key)
            result.append(candidate)
    return result


def matches(query: str, candidates: Sequence[Candidate]) -> List[Candidate]:
    """The candidates ``query`` names, best rule first (an empty list when none)."""
    folded = query.lower()
    for rule in (lambda c: c.key.lower() == folded,
                 lambda c: c.name == query,
                 lambda c: c.key.lower().startswith(folded) or (c.name and c.name.startswith(query))):
        found = _unique([c for c in candidates if rule(c)])
        if found:
            return found
    return []


def resolve(query: str, candidates: Sequence[Candidate], kind: str = "VM", key_name: str = "uuid") -> Any:
    """The value of the one candidate ``query`` names; NotFound when none or several do."""
    if not query or not query.strip():
        raise InvalidArgument("An empty %s name was given." % kind)
    found = matches(query, candidates)
    if not found:
        raise NotFound("No %s is named %r (by %s, name or prefix)." % (kind, query, key_name),
                       code="%s_NOT_FOUND" % kind.upper().replace(" ", "_"))
    if len(found) > 1:
        raise _ambiguous(kind, query, found, key_name)
    return found[0].value
