"""Querysets of the participant pages compiled once per process and run again with new values.

Compiling a query with joins (select_related, ordering across relations) costs the ORM more than
the database takes to run it. The SQL, the converters and the related-object populators of such a
queryset depend only on the models, so :func:`first` builds the queryset once with stand-in
values, keeps what the ORM made of it and, for each call, runs the same SQL with the real values
and builds the objects with the ORM's own machinery: the same object ``queryset.first()`` gives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.db import connections
from django.db.models import Model, QuerySet


def _stand_in(number: int, value: Any) -> Any:
    """A value of ``value``'s type unlike any real one, so that its position among the parameters is certain."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"compiled queries take integers and strings, not {type(value).__name__}")
    return -7_654_321_000 - number if isinstance(value, int) else f"\x00floodlight-stand-in-{number}\x00"


_COMPILED: dict[tuple[str, str], tuple[Any, ...]] = {}


def converted(row: Sequence[Any], converters: dict, connection: Any) -> tuple:
    """``row`` with the ORM's converters applied (what ``SQLCompiler.apply_converters`` does)."""
    if not converters:
        return tuple(row)
    values = list(row)
    for position, (functions, expression) in converters.items():
        value = values[position]
        for function in functions:
            value = function(value, expression, connection)
        values[position] = value
    return tuple(values)


def _compile(key: str, alias: str, build: Callable[..., QuerySet], values: Sequence[Any]) -> tuple[Any, ...]:
    from django.db.models.query import get_related_populators

    stand_ins = [_stand_in(number, value) for number, value in enumerate(values)]
    queryset = build(*stand_ins).using(alias)
    queryset = (queryset if queryset.ordered else queryset.order_by("pk"))[:1]  # as QuerySet.first()
    compiler = queryset.query.get_compiler(using=alias)
    sql, params = compiler.as_sql()
    slots = []
    for number, stand_in in enumerate(stand_ins):
        positions = [i for i, value in enumerate(params) if type(value) is type(stand_in) and value == stand_in]
        if len(positions) != 1:
            raise ValueError(f"{key}: stand-in {number} is not exactly one parameter of the query")
        slots.append(positions[0])
    select, klass_info = compiler.select, compiler.klass_info
    start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
    columns = [column[0].target.attname for column in select[start:end]]
    converters = compiler.get_converters([column[0] for column in select])
    populators = get_related_populators(klass_info, select, alias)
    return (sql, list(params), slots, klass_info["model"], columns, (start, end), converters, populators)


def first(key: str, build: Callable[..., QuerySet], values: Sequence[Any], alias: str = "default") -> Model | None:
    """``build(*values).first()``, with the query compiled once per process for ``key``.

    ``build`` must use each value as exactly one query parameter, unchanged (an integer or a
    string compared with a column), and build the same query for any values.
    """
    compiled = _COMPILED.get((key, alias))
    if compiled is None:
        compiled = _compile(key, alias, build, values)
        _COMPILED[(key, alias)] = compiled
    sql, params, slots, model, columns, (start, end), converters, populators = compiled
    params = list(params)
    for slot, value in zip(slots, values, strict=True):
        _stand_in(0, value)  # the same kinds of values as when compiled
        params[slot] = value
    connection = connections[alias]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    row = converted(row, converters, connection)
    instance = model.from_db(alias, columns, row[start:end])
    for populator in populators:
        populator.populate(row, instance)
    return instance
