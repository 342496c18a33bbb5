"""`valuecorpus cache stats|prune`: the engine's durable response cache under `<home>/cache/`."""

from __future__ import annotations

import typer

from valuecorpus.cli.common import settings


def _open_cache():
    from valuecorpus.pipelines.engine.cache import CACHE_FILE, open_cache
    from valuecorpus.schemas.errors import NotFoundError

    home = settings().data_home
    folder = home.cache_dir
    if not home.remote and not (folder / CACHE_FILE).exists():
        raise NotFoundError(f"no response cache at {folder / CACHE_FILE} (nothing generated with this home yet)")
    return open_cache(str(folder))


def register(app: typer.Typer) -> None:
    cache_app = typer.Typer(name="cache", help="The LLM response cache: statistics and pruning.",
                            no_args_is_help=True)

    @cache_app.command("stats")
    def stats() -> None:
        """Entries, size on disk, entries per model, oldest and newest answer."""
        from datetime import UTC, datetime

        cache = _open_cache()
        try:
            s = cache.stats()
        finally:
            cache.close()

        def when(t: float | None) -> str:
            return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds") if t else "-"

        print(f"cache: {s.path}")
        print(f"entries: {s.entries}  size: {s.bytes / 1e6:.2f} MB  oldest: {when(s.oldest)}  newest: {when(s.newest)}")
        for model, count in s.models.items():
            print(f"  {model or '(unnamed)'}: {count}")
        if s.old_scheme:
            print(f"{s.old_scheme} entries use an older key scheme (keyed without the endpoint's identity): "
                  "they are never hit; `cache prune` removes them with the rest")

    @cache_app.command("prune")
    def prune(
        older_than: float | None = typer.Option(None, "--older-than", help="Remove answers older than DAYS.",
                                                metavar="DAYS", min=0),
        model: str | None = typer.Option(None, "--model", help="Remove answers of this model only."),
        all_: bool = typer.Option(False, "--all", help="Remove every answer."),
    ) -> None:
        """Remove cached answers (by age and/or model); later runs pay for them again."""
        from valuecorpus.schemas.errors import ValueCorpusError

        if older_than is None and model is None and not all_:
            raise ValueCorpusError("cache prune: give --older-than DAYS, --model NAME, or --all")
        cache = _open_cache()
        try:
            removed = cache.prune(older_than, model)
        finally:
            cache.close()
        print(f"removed {removed} cached answers")

    app.add_typer(cache_app, name="cache")
