"""Expert curation in Label Studio: a managed local server (`server`), the connection (`client`), labeling
configs per record kind (`configs/`), records ↔ tasks (`tasks`), idempotent push (`push`), pull into a
decisions table (`pull`), majority + adjudication (`resolve`), agreement statistics (`agreement`) and the
curated run (`curated`). See docs/curation.md."""
