"""Expert curation in Label Studio: a managed local server (`server`), the connection (`client`), labeling
configs and expert instructions per record kind (`configs/`), records ↔ tasks (`tasks`), idempotent push and
adjudication tasks that show the reviews (`push`), pull into a decisions table (`pull`), majority + adjudication
and which edit is applied (`resolve`), agreement statistics incl. set agreement on value labels (`agreement`)
and the curated run with edit provenance and originals (`curated`). See docs/curation.md."""
