"""TinyDB tables that tell the storage what changed, instead of handing it the whole database.

Why: TinyDB's ``Table._update_table`` rebuilds the table dict twice (keys to ints and back) and
calls ``storage.write`` with every table, so each insert costs O(history) before any byte reaches
the disk. :class:`JournalTable` gives the updater a :class:`PendingTable` – a view over the live
table that records puts, removals and a clear without touching the live data – and passes just
that :class:`~voicebox.store_journal.Change` to :meth:`JournalStorage.commit`. The live data
changes only after the change is on disk, so a failed write leaves memory as it was.

Queries by condition (``update(fields, cond)``, ``remove(cond)``) are evaluated on the live
documents first and then run by document id, so only the matching documents enter the change.
Any other updater still works: every document it reads through the view is treated as changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import Any, cast

from tinydb import TinyDB
from tinydb.queries import QueryLike
from tinydb.table import Document, Table

from .json_storage import JournalStorage
from .store_journal import Change

Doc = dict[str, Any]


class PendingTable(MutableMapping[int, Doc]):
    """What TinyDB's updaters see: the live table plus this write's not-yet-committed edits.

    A document read through the view is copied (shallowly) and counted as changed, because
    TinyDB's updates edit the document they get in place.
    """

    def __init__(self, live: Mapping[str, Doc]) -> None:
        self._live = live
        self._put: dict[str, Doc] = {}
        self._deleted: set[str] = set()
        self._cleared = False

    def _visible(self, key: str) -> bool:
        if key in self._put:
            return True
        return not self._cleared and key not in self._deleted and key in self._live

    def __getitem__(self, doc_id: int) -> Doc:
        key = str(doc_id)
        if key in self._put:
            return self._put[key]
        if not self._visible(key):
            raise KeyError(doc_id)
        doc = dict(self._live[key])
        self._put[key] = doc
        return doc

    def __setitem__(self, doc_id: int, doc: Doc) -> None:
        key = str(doc_id)
        self._deleted.discard(key)
        self._put[key] = doc

    def __delitem__(self, doc_id: int) -> None:
        key = str(doc_id)
        if not self._visible(key):
            raise KeyError(doc_id)
        self._put.pop(key, None)
        if not self._cleared and key in self._live:
            self._deleted.add(key)

    def __contains__(self, doc_id: object) -> bool:
        return self._visible(str(doc_id))

    def __iter__(self) -> Iterator[int]:
        if not self._cleared:
            for key in self._live:
                if key not in self._deleted and key not in self._put:
                    yield int(key)
        for key in self._put:
            yield int(key)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def clear(self) -> None:
        self._cleared = True
        self._put.clear()
        self._deleted.clear()

    def change(self, table: str) -> Change:
        return Change(table, dict(self._put), tuple(sorted(self._deleted)), self._cleared)


class JournalTable(Table):
    """A TinyDB table whose writes commit only what changed (see the module docstring)."""

    _storage: JournalStorage

    def _update_table(self, updater: Callable[[dict[int, Mapping]], None]) -> None:
        live = self._storage.read().get(self.name, {})
        pending = PendingTable(live)
        updater(cast(dict[int, Mapping], pending))
        self._storage.commit(pending.change(self.name))
        self.clear_cache()

    def _get_next_id(self) -> int:
        return self._storage.allocate_id(self.name)

    def _matching(self, cond: QueryLike) -> list[int]:
        with self._storage.locked():
            return [int(key) for key, doc in list(self._read_table().items()) if cond(doc)]

    def update(
        self,
        fields: Mapping | Callable[[MutableMapping], None],
        cond: QueryLike | None = None,
        doc_ids: Iterable[int] | None = None,
    ) -> list[int]:
        if cond is not None and doc_ids is None:
            return super().update(fields, doc_ids=self._matching(cond))
        return super().update(fields, cond, doc_ids)

    def remove(self, cond: QueryLike | None = None, doc_ids: Iterable[int] | None = None) -> list[int]:
        if cond is not None and doc_ids is None:
            return super().remove(doc_ids=self._matching(cond))
        return super().remove(cond, doc_ids)

    def __iter__(self) -> Iterator[Document]:
        """Documents as of one instant, so iterating without the store lock cannot trip over a
        concurrent insert (the live dict is changed in place)."""
        with self._storage.locked():
            items = list(self._read_table().items())
        for doc_id, doc in items:
            yield self.document_class(doc, self.document_id_class(doc_id))


class JournalDB(TinyDB):
    """TinyDB with :class:`JournalTable` tables on a :class:`JournalStorage`."""

    table_class = JournalTable
    default_storage_class = JournalStorage
