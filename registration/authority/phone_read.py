"""The phone page's one read: a license's active binding with the license, as fixed SQL.

A reload of the phone page (the usual scan) reads one row, the license's active binding
joined to the license. The ORM compiles that query anew on every call, and compiling it
cost more than the database round trip itself (docs/performance.md, rows 5 and 9). So the
SELECT is written once per database connection, from the models' own table and column
names, and each value goes through its field's own database converters: the instances are
the ones the ORM would build with `select_related("license").only(...)`, the other fields
deferred (read on first use, as with only()). tests/test_phone_read.py holds it to the ORM's
answer on SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, Model
from django.db.models.expressions import Col

from registration.authority.models import Binding, BindingState, IssuedLicense

# What a reload reads of the binding (the rest is deferred).
BINDING_FIELDS = frozenset(
    {"id", "license", "installation_id", "state", "last_nonce", "chain_refused", "copied_at"}
)
# What the phone page, the MAC and the license rules read of a license.
LICENSE_FIELDS = frozenset(
    {"id", "license_id", "company", "project_name", "expires_at", "max_nodes", "revoked_at", "text"}
)

Converter = Callable[[Any, Col, BaseDatabaseWrapper], Any]


@dataclass(frozen=True)
class _Compiled:
    sql: str
    binding_attnames: tuple[str, ...]
    license_attnames: tuple[str, ...]
    # (position in the SELECT, column, converters) for each value that has converters.
    converters: tuple[tuple[int, Col, tuple[Converter, ...]], ...]


def _selected(model: type[Model], names: frozenset[str]) -> tuple[Field, ...]:
    # In the model's own field order: Model.from_db() fills the fields in that order.
    found = tuple(f for f in model._meta.concrete_fields if f.name in names)
    missing = names - {f.name for f in found}
    if missing:  # as only() would refuse a name it does not know
        raise FieldDoesNotExist(f"{model.__name__} has no field {sorted(missing)}")
    return found


# Kept on the connection object (a thread's), so it goes with it: a backend's converters
# are methods of its connection's operations.
_ATTRIBUTE = "_licserver_phone_read"


def _compiled(connection: BaseDatabaseWrapper) -> _Compiled:
    found = getattr(connection, _ATTRIBUTE, None)
    if found is None:
        found = _compile(connection)
        setattr(connection, _ATTRIBUTE, found)
    return found


# At import, so that a name that is no field fails at start-up, not on a phone page.
_BINDING_SELECTED = _selected(Binding, BINDING_FIELDS)
_LICENSE_SELECTED = _selected(IssuedLicense, LICENSE_FIELDS)


def _compile(connection: BaseDatabaseWrapper) -> _Compiled:
    """Write the SELECT and gather each value's converters for this connection."""
    quote = connection.ops.quote_name
    binding_table, license_table = Binding._meta.db_table, IssuedLicense._meta.db_table
    tables = [(binding_table, f) for f in _BINDING_SELECTED] + [
        (license_table, f) for f in _LICENSE_SELECTED
    ]
    columns = ", ".join(f"{quote(table)}.{quote(f.column)}" for table, f in tables)
    b, lic = quote(binding_table), quote(license_table)

    def column(table: str, model: type[Model], name: str) -> str:
        return f"{table}.{quote(model._meta.get_field(name).column)}"

    join = f"{column(b, Binding, 'license')} = {column(lic, IssuedLicense, 'id')}"
    where = (
        f"{column(lic, IssuedLicense, 'license_id')} = %s AND {column(b, Binding, 'state')} = %s"
    )
    # Only the models' own names go into the text; the two values are parameters.
    sql = f"SELECT {columns} FROM {b} INNER JOIN {lic} ON ({join}) WHERE {where} LIMIT 1"  # noqa: S608
    converters = []
    for i, (table, f) in enumerate(tables):
        col = f.get_col(table)
        found = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        if found:
            converters.append((i, col, tuple(found)))
    return _Compiled(
        sql,
        tuple(f.attname for f in _BINDING_SELECTED),
        tuple(f.attname for f in _LICENSE_SELECTED),
        tuple(converters),
    )


def _convert(row: Sequence[Any], compiled: _Compiled, connection: BaseDatabaseWrapper) -> list[Any]:
    values = list(row)
    for i, col, converters in compiled.converters:
        for converter in converters:
            values[i] = converter(values[i], col, connection)
    return values


def active_binding(license_id: uuid.UUID, using: str | None = None) -> Binding | None:
    """Return the license's active binding with its license, in one indexed read."""
    using = using or router.db_for_read(Binding)
    connection = connections[using]
    compiled = _compiled(connection)
    params = [
        IssuedLicense._meta.get_field("license_id").get_db_prep_value(license_id, connection),
        BindingState.ACTIVE.value,
    ]
    # At most one active binding per license (a constraint), so no ORDER BY is needed.
    with connection.cursor() as cursor:
        cursor.execute(compiled.sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    values = _convert(row, compiled, connection)
    split = len(compiled.binding_attnames)
    binding = Binding.from_db(using, compiled.binding_attnames, values[:split])
    issued = IssuedLicense.from_db(using, compiled.license_attnames, values[split:])
    binding.license = issued  # what select_related would have cached
    return binding
