"""What every DAG task in `dags/` does: read the CLI's settings from Airflow, run the `valuecorpus` command line,
and turn its exit code into a task outcome. Imported only by DAG files (on an Airflow worker); Airflow's modules
are imported inside the functions so that importing this module costs nothing at DAG parse time.

Settings come from Airflow, else from the worker's environment (never from a DAG file):
- connection `valuecorpus_llm`: host = the OpenAI-compatible base URL (or extra `base_url`), password = API key,
  extra `{"model": …}`;
- connection `valuecorpus_label_studio`: host = URL (or extra `url`), password = API key;
- variable `valuecorpus_home`: the data home.
"""

from __future__ import annotations

from typing import Any

from valuecorpus.scheduling import run_cli, settings_env

LLM_CONNECTION = "valuecorpus_llm"
LABEL_STUDIO_CONNECTION = "valuecorpus_label_studio"
HOME_VARIABLE = "valuecorpus_home"


def _connection(conn_id: str) -> Any:
    from airflow.sdk import Connection

    try:
        return Connection.get(conn_id)
    except Exception:  # not defined: the worker's environment applies
        return None


def task_env(*, llm: bool = False, label_studio: bool = False) -> dict[str, str]:
    """The CLI's settings from the Airflow connections this DAG uses and the home variable; unset ones are left
    to the worker's environment."""
    from airflow.sdk import Variable

    values: dict[str, str | None] = {"home": Variable.get(HOME_VARIABLE, default=None)}
    if llm and (c := _connection(LLM_CONNECTION)) is not None:
        values.update(openai_base_url=c.extra_dejson.get("base_url") or c.host, openai_api_key=c.password,
                      model=c.extra_dejson.get("model"))
    if label_studio and (c := _connection(LABEL_STUDIO_CONNECTION)) is not None:
        values.update(label_studio_url=c.extra_dejson.get("url") or c.host, label_studio_api_key=c.password)
    return settings_env(**values)


def run_task(*args: str, env: dict[str, str], quiet: bool = False) -> str:
    """Run the CLI and return its stdout. A failure a retry cannot fix (a bad recipe, a wrong token, a failed
    gate) fails the task at once; any other raises, so Airflow retries it."""
    try:  # Airflow ≥ 3.2 keeps task exceptions in the SDK
        from airflow.sdk.exceptions import AirflowFailException
    except ImportError:  # pragma: no cover
        from airflow.exceptions import AirflowFailException

    print("valuecorpus " + " ".join(args), flush=True)
    result = run_cli(*args, env=env)
    if result.stdout and not quiet:
        print(result.stdout, end="", flush=True)
    if result.ok:
        return result.stdout
    message = f"valuecorpus {' '.join(args[:2])} exited with code {result.code}"
    if result.permanent:
        raise AirflowFailException(message + " (see the error line above; a retry would not change it)")
    raise RuntimeError(message)
