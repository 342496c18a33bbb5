"""The texts of stored records (a published version's files, a staged run's records), read by column.

A chain declares the top-level fields its `text_of` reads (`Chain.text_fields`); only `id` and those columns
are read, in record batches, and `text_of` is applied to a record holding just them
(`schemas.arrow.partial_batches`), so `text_of` stays the one definition of a record's text and no record is
built whole. A file of a kind that has none of the fields (an agent case's environment) gives no texts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from valuecorpus.schemas.arrow import partial_batches

if TYPE_CHECKING:
    from valuecorpus.pipelines.chains.base import Chain

BATCH_ROWS = 16_384  # rows per record batch: a batch's Python texts and signatures are the transient memory


def text_batches(chain: Chain, url: str, batch_rows: int = BATCH_ROWS) -> Iterator[tuple[list[str], list[str]]]:
    """(ids, texts) per record batch of one Parquet file: the records with a non-empty text."""
    if not chain.text_fields:
        return
    for records in partial_batches(url, chain.text_fields, batch_rows):
        ids, texts = [], []
        for record in records:
            if text := chain.text_of(record):
                ids.append(record.id)
                texts.append(text)
        yield ids, texts


def stored_texts(chain: Chain, urls: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(id, text) of the records in these Parquet files that have a text, in file order."""
    for url in urls:
        for ids, texts in text_batches(chain, url):
            yield from zip(ids, texts, strict=True)
