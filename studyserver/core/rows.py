"""Rows that rarely change but every participant page reads (their study, their district), kept in
Django's cache by primary key so that a page's participant query joins only what is theirs alone.

The owning app connects :meth:`RowCache.forget` to the model's ``post_save`` and ``post_delete``:
an edited row is dropped at once and again when the change commits (a page served meanwhile could
cache the old row). A queryset ``update()`` sends no signal, so the owner forgets the row itself.
With Redis every web process shares one cache; without it (one cache per process) another process
may keep an edited row for ``seconds``.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from django.core.cache import cache
from django.db import models, transaction

RowModel = TypeVar("RowModel", bound=models.Model)


class RowCache(Generic[RowModel]):
    """``model``'s rows by primary key, without the ``defer`` fields (a district's boundary)."""

    def __init__(self, model: type[RowModel], *, seconds: int, defer: tuple[str, ...] = ()) -> None:
        self.model = model
        self.seconds = seconds
        self.defer = defer

    def key(self, pk: Any) -> str:
        return f"rows:{self.model._meta.label_lower}:{pk}"

    def get(self, pk: Any) -> RowModel:
        """The row (a copy of its own for each caller); ``DoesNotExist`` as ``Manager.get``."""
        key = self.key(pk)
        row = cache.get(key)
        if row is None:
            row = self.model._default_manager.defer(*self.defer).get(pk=pk)
            cache.set(key, row, self.seconds)
        return row

    def forget(self, sender: Any = None, instance: RowModel | None = None, **kwargs: Any) -> None:
        """Receiver of ``post_save``/``post_delete``; also called with ``instance`` after an ``update()``."""
        if instance is None or instance.pk is None:
            return
        key = self.key(instance.pk)
        cache.delete(key)
        transaction.on_commit(lambda: cache.delete(key))
