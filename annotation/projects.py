"""The Label Studio projects of a run: one per (kind, batch) for review, one per (kind, batch) for adjudication.

The registry `<run>/curation/projects.json` remembers them; each project's label config also carries a marker
(`<!-- valuecorpus:<run>:<kind>:<batch>:<role> -->`: Label Studio keeps it with the project, and the labeling UI
never shows a config comment), so a project created by a push that was killed before the registry was written is
found again rather than created twice. Projects made before the marker moved there carry it as their description
and are found too. The description is for people (run, kind, batch, role); the expert instructions, a template
per kind, are shown before labeling. Titles fit Label Studio's 50 characters without cutting a run id: the run
id is in the title only when it fits whole, and always in the description.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from valuecorpus.schemas.errors import ValueCorpusError
from valuecorpus.schemas.layout import RunLayout, write_json_atomic

REVIEW, ADJUDICATION = "review", "adjudication"


def curation_dir(run: RunLayout) -> Path:
    return run.path / "curation"


@dataclass
class ProjectRef:
    kind: str
    batch: str
    role: str
    project_id: int
    title: str
    taxonomy: str | None = None
    overlap: int = 1

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.batch}:{self.role}"


def marker(run_id: str, kind: str, batch: str, role: str) -> str:
    return f"valuecorpus:{run_id}:{kind}:{batch}:{role}"


TITLE_MAX = 50  # Label Studio's limit


def title(run_id: str, kind: str, batch: str, role: str) -> str:
    base = f"{kind}/{batch}" + (" adjudication" if role == ADJUDICATION else "")
    full = f"{base} · {run_id}"
    return full if len(full) <= TITLE_MAX else base[:TITLE_MAX]


def description(run_id: str, kind: str, batch: str, role: str) -> str:
    what = "adjudication of disagreements" if role == ADJUDICATION else "expert review"
    return f"{what}: {kind} samples of run {run_id}, batch {batch}"


def _has_marker(project: Any, mark: str) -> bool:
    return f"<!-- {mark} -->" in (project.label_config or "") or (project.description or "").strip() == mark


def load(run: RunLayout) -> dict[str, ProjectRef]:
    path = curation_dir(run) / "projects.json"
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    refs = [ProjectRef(**p) for p in data.get("projects", [])]
    return {r.key: r for r in refs}


def save(run: RunLayout, refs: dict[str, ProjectRef]) -> None:
    ordered = [asdict(r) for r in sorted(refs.values(), key=lambda r: r.key)]
    write_json_atomic(curation_dir(run) / "projects.json", {"run_id": run.run_id, "projects": ordered})


def find_or_create(client: Any, run: RunLayout, refs: dict[str, ProjectRef], kind: str, batch: str, role: str,
                   label_config: str, taxonomy: str | None, overlap: int, instructions: str = ""
                   ) -> tuple[ProjectRef, bool]:
    """The project for (kind, batch, role): from the registry, else by its marker, else newly created.
    `label_config` must carry the marker comment (`configs.render(..., marker=marker(...))`). Returns (ref,
    created)."""
    from label_studio_sdk.core.api_error import ApiError

    key = f"{kind}:{batch}:{role}"
    mark = marker(run.run_id, kind, batch, role)
    ref = refs.get(key)
    if ref is not None:
        try:
            client.projects.get(id=ref.project_id)
            return ref, False
        except ApiError as exc:
            if exc.status_code != 404:
                raise
            # deleted in Label Studio: fall through and look it up by marker / recreate
    found = next((p for p in client.projects.list() if _has_marker(p, mark)), None)
    created = found is None
    if found is None:
        try:
            found = client.projects.create(
                title=title(run.run_id, kind, batch, role), description=description(run.run_id, kind, batch, role),
                label_config=label_config, maximum_annotations=max(1, overlap),
                expert_instruction=instructions, show_instruction=bool(instructions),
            )
        except ApiError as exc:
            body = exc.body if isinstance(exc.body, dict) else {}
            detail = body.get("validation_errors") or body.get("detail") or exc.status_code
            raise ValueCorpusError(f"Label Studio refused the {kind} project (HTTP {exc.status_code}): {detail}"
                                   ) from None
    ref = ProjectRef(kind, batch, role, int(found.id), found.title or "", taxonomy, max(1, overlap))
    refs[key] = ref
    save(run, refs)
    return ref, created


def _ledger_path(run: RunLayout) -> Path:
    return curation_dir(run) / "tasks.json"


def update_ledger(run: RunLayout, project_key: str, tasks: dict[str, list[int]]) -> None:
    """Remember which samples were pushed to which project, so a task deleted in the UI can be reported."""
    path = _ledger_path(run)
    ledger = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    known = ledger.get(project_key, {})
    known.update({sid: ids[0] for sid, ids in tasks.items()})
    ledger[project_key] = dict(sorted(known.items()))
    write_json_atomic(path, ledger)


def ledger(run: RunLayout) -> dict[str, dict[str, int]]:
    path = _ledger_path(run)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
