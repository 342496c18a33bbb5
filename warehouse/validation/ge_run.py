"""Running the generated checks with Great Expectations 1.x: one GE suite and validation definition per flat
table (an ephemeral context, a pandas data source), the results turned into the manifest's `validation` entries,
and the Data Docs site written where the caller says."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from valuecorpus.warehouse.validation.checks import Check, Table

if TYPE_CHECKING:
    import duckdb

MAX_IDS = 5
SITE = "valuecorpus"


def _jsonable(value: Any) -> Any:
    """GE's observed values may be numpy scalars or NaN: plain JSON."""
    if value is None or isinstance(value, bool | str):
        return value
    if hasattr(value, "item") and not isinstance(value, list | tuple | dict):
        value = value.item()
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 6)
    if isinstance(value, int):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple) or hasattr(value, "tolist"):
        return [_jsonable(v) for v in (value.tolist() if hasattr(value, "tolist") else value)]
    return str(value)


class Runner:
    def __init__(self, suite_name: str, docs_dir: Path | None) -> None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        self.gx = gx
        self.suite_name = suite_name
        # In memory, and without GE's default docs site (it would leave a temp directory per validation).
        config = DataContextConfig(store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False))
        self.context = gx.get_context(mode="ephemeral", project_config=config)
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.docs_dir = docs_dir
        if docs_dir is not None:
            self.context.add_data_docs_site(site_name=SITE, site_config={
                "class_name": "SiteBuilder",
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            })
        self.source = self.context.data_sources.add_pandas("valuecorpus")
        self.count = 0

    def run_table(self, con: duckdb.DuckDBPyConnection, table: Table) -> list[dict[str, Any]]:
        frame = table.build(con) if table.build is not None else con.sql(table.sql).df()
        for name, fn in table.derived.items():
            frame[name] = [fn(row) for row in frame.to_dict("records")] if len(frame) else []
        self.count += 1
        asset = self.source.add_dataframe_asset(f"t{self.count}-{table.name}")
        batch = asset.add_batch_definition_whole_dataframe("all")
        suite = self.context.suites.add(self.gx.ExpectationSuite(name=f"{self.suite_name}.{table.name}"))
        for check in table.checks:
            suite.add_expectation(getattr(self.gx.expectations, check.expectation)(**check.kwargs))
        definition = self.context.validation_definitions.add(
            self.gx.ValidationDefinition(name=f"{self.count}-{table.name}", data=batch, suite=suite))
        result = definition.run(batch_parameters={"dataframe": frame},
                                result_format={"result_format": "COMPLETE", "partial_unexpected_count": MAX_IDS})
        return [self._entry(check, res, frame) for check, res in zip(table.checks, result.results, strict=True)]

    def _entry(self, check: Check, res: Any, frame: Any) -> dict[str, Any]:
        info = res.result or {}
        rows = list(info.get("unexpected_index_list") or [])
        if check.expectation == "ExpectColumnValuesToBeUnique":
            rows = sorted(rows, key=lambda i: str(frame.at[i, check.ids_column]))
        ids: list[str] = []
        for i in rows:
            found = frame.at[i, check.ids_column]
            for rid in (list(found) if isinstance(found, list | tuple) or hasattr(found, "tolist") else [found]):
                if str(rid) not in ids:
                    ids.append(str(rid))
            if len(ids) >= MAX_IDS:
                break
        observed: dict[str, Any] = {"rows": len(frame)}
        if "observed_value" in info:
            observed["value"] = _jsonable(info["observed_value"])
        if "unexpected_count" in info:
            observed["unexpected"] = _jsonable(info["unexpected_count"])
            if "n" in frame.columns and rows:  # distinct values: count the records behind them
                observed["unexpected_records"] = int(sum(int(frame.at[i, "n"]) for i in rows))
        if check.values_column is not None and rows:
            values = []
            for i in rows[:MAX_IDS]:
                value = _jsonable(frame.at[i, check.values_column])
                if "label" in frame.columns:  # references: which record (by the name people know it by) and what
                    value = {"record": str(frame.at[i, "label"]), "value": value}
                values.append(value)
            observed["unexpected_values"] = values
        if res.exception_info and res.exception_info.get("raised_exception"):
            observed["error"] = str(res.exception_info.get("exception_message"))[:300]
        return {"name": check.name, "kind": check.kind, "column": check.column, "success": bool(res.success),
                "observed": observed, "threshold": _jsonable(check.threshold), "unexpected_ids": ids[:MAX_IDS]}

    def build_docs(self) -> str | None:
        if self.docs_dir is None:
            return None
        self.context.build_data_docs(site_names=[SITE])
        index = self.docs_dir / "index.html"
        return str(index) if index.is_file() else None
