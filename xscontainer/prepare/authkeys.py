"""Pure handling of OpenSSH ``authorized_keys`` text: is a key already there, and what to append.

A key is identified by its base64 blob (which names its type), not by its comment or options, so
a pool key already present with another comment is never written a second time.
"""

from typing import List, Optional


def _split_options(line: str) -> Optional[str]:
    """The part of ``line`` after a leading options field (which may hold quoted spaces), or
    None when the quotes never close."""
    quoted = False
    escaped = False
    for index, char in enumerate(line):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char in " \t" and not quoted:
            return line[index:].strip()
    return None


def _looks_like_key_type(token: str) -> bool:
    return token.startswith(("ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-sha2-"))


def key_blob(line: str) -> Optional[str]:
    """The base64 key blob of one ``authorized_keys`` (or ``.pub``) line; None for blank lines,
    comments and lines that hold no key."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    tokens = text.split()
    if not _looks_like_key_type(tokens[0]):
        rest = _split_options(text)
        if rest is None:
            return None
        tokens = rest.split()
        if not tokens or not _looks_like_key_type(tokens[0]):
            return None
    return tokens[1] if len(tokens) > 1 else None


def blobs(text: str) -> List[str]:
    """The key blobs of every key line in ``text``, in order (duplicates kept)."""
    found = []
    for line in text.splitlines():
        blob = key_blob(line)
        if blob is not None:
            found.append(blob)
    return found


def normalized_public_line(public_line: str) -> str:
    """``public_line`` as one clean line; ValueError when it is not one public key."""
    line = public_line.strip()
    if "\n" in line or "\r" in line:
        raise ValueError("a public key line must be a single line")
    if key_blob(line) is None:
        raise ValueError("not an OpenSSH public key line: %r" % line[:40])
    return line


def text_to_append(existing: str, public_line: str) -> Optional[str]:
    """What to append to an ``authorized_keys`` file holding ``existing`` so that it authorizes
    ``public_line``; None when the key is there already (nothing to write)."""
    line = normalized_public_line(public_line)
    if key_blob(line) in blobs(existing):
        return None
    separator = "\n" if existing and not existing.endswith("\n") else ""
    return separator + line + "\n"


def merged(existing: str, public_line: str) -> str:
    """The whole file after ``text_to_append`` (for callers that rewrite rather than append)."""
    addition = text_to_append(existing, public_line)
    return existing if addition is None else existing + addition
