"""Numbers in text an untrusted sender wrote (a guest's engine, a guest's reported addresses)."""


def ascii_digits(text: str) -> bool:
    """One or more of 0-9 and nothing else: ``str.isdigit`` also accepts "²" or "٣", which ``int``
    then refuses or misreads."""
    return bool(text) and all("0" <= c <= "9" for c in text)
