"""Quoting for the few SQL texts DuckDB cannot take as bound parameters (identifiers, ATTACH and COPY paths)."""


def identifier(name: str) -> str:
    """A double-quoted SQL identifier; embedded quotes are doubled, so any name stays one identifier."""
    return '"' + name.replace('"', '""') + '"'


def qualified(*parts: str) -> str:
    return ".".join(identifier(part) for part in parts)


def literal(text: str) -> str:
    """A single-quoted SQL string literal; embedded quotes are doubled. NUL cannot be represented and is refused."""
    if "\x00" in text:
        raise ValueError("a NUL character cannot appear in an SQL string")
    return "'" + text.replace("'", "''") + "'"
