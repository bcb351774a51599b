"""`automem-pipelines`: the project's command line."""

# Importing this module does no work and imports neither Dagster nor the settings (pydantic,
# redis): each command imports what it needs when it runs, so `--help` and a hand-off to a
# running stack (`reembed --stack`) never pay for Dagster's import.

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from .constants import (
    DEFAULT_BATCH_SIZE,
    DRIFT_SYNC_JOB,
    ENRICHMENT_JOB,
    MIGRATE_JOB,
    REEMBED_JOB,
    SUMMARY_OPS,
    TAG_TRIGGER,
)

if TYPE_CHECKING:
    from .settings import Settings
    from .stores.graph import GraphStore

DEMO_SAMPLE_SIZE = 2000


def _settings() -> Settings:
    from .stores.gc_pause import cyclic_gc_paused

    with cyclic_gc_paused():  # see run_job
        from .settings import Settings, SettingsError

    try:
        return Settings.from_env()
    except SettingsError as exc:
        print(f"automem-pipelines: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


@contextmanager
def _graph(settings: Settings) -> Iterator[GraphStore]:
    """The graph store, open; an unreachable FalkorDB is one message, not a traceback."""
    from .definitions import build_resources
    from .stores.graph import GraphUnavailableError

    try:
        with build_resources(settings, from_env=False)["falkordb"].get_store() as graph:
            yield graph
    except GraphUnavailableError as exc:
        raise SystemExit(f"automem-pipelines: {exc}") from None


def run_job(settings: Settings, job_name: str, run_config: dict) -> dict:
    """Run a job in this process against the persistent Dagster instance; its summary."""
    import gc

    from .stores.gc_pause import cyclic_gc_paused

    # Importing Dagster and the code location and opening the instance (its storage modules)
    # create a few hundred thousand long-lived objects and no garbage: with the cyclic
    # collector on, CPython runs several full collections over them on the way (~0.3 s here).
    # Paused for that, then frozen out of the run's collections, as the run workers' server
    # does before it forks (run_workers.py).
    with cyclic_gc_paused():
        import dagster as dg

        from .definitions import build_definitions
        from .instance import ensure_dagster_home
        from .run_workers import worker_tags
        from .runs import failure_messages

        ensure_dagster_home(settings)
        job = build_definitions(settings).get_job_def(job_name)
        instance = dg.DagsterInstance.get()
    gc.freeze()
    import uuid

    from .run_progress import display_for, instance_page

    display = display_for()
    # on a terminal the bar shows the progress: the console keeps warnings and errors only
    level = "WARNING" if display.out.isatty() else "INFO"
    run_config = {**run_config, "loggers": {"console": {"config": {"log_level": level}}}}
    run_id = str(uuid.uuid4())
    with instance, _following(lambda c: instance_page(instance, run_id, c), display):
        result = job.execute_in_process(
            run_config=run_config,
            instance=instance,
            raise_on_error=False,
            run_id=run_id,
            # this process is the run's worker: the daemon's run monitoring fails the run if
            # it dies, and Terminate interrupts it
            tags={TAG_TRIGGER: "cli", **worker_tags()},
        )
    if not result.success:
        try:  # a run failed by its failure threshold still has its summary: show it
            print(json.dumps(result.output_for_node(SUMMARY_OPS[job_name]), indent=2))
        except Exception:  # noqa: BLE001 - the run failed before its summary
            pass
        raise SystemExit(f"{job_name} run failed:\n" + "\n".join(failure_messages(result)[-3:]))
    return result.output_for_node(SUMMARY_OPS[job_name])


@contextmanager
def _following(fetch, display) -> Iterator[None]:
    """Show a run's progress events while the body runs (run_progress.Follower)."""
    from .run_progress import Follower

    follower = Follower(fetch, display).start()
    try:
        yield
    finally:
        follower.stop()


def hand_off(settings: Settings, url: str, job_name: str, run_config: dict) -> dict:
    """Launch the job on a running stack's Dagster webserver (`automem-pipelines stack`) over
    GraphQL, through the admin API's client, wait for it to finish, and give its summary; a
    failed run exits as the in-process path does. Dagster itself is not imported here."""
    from automem_api.config import ApiConfig
    from automem_api.gateway import (
        FINISHED_STATUSES,
        DagsterGateway,
        DagsterUnavailableError,
        LaunchError,
    )

    config = ApiConfig.from_settings(settings, dagster_url=url)
    gateway = DagsterGateway(config)
    try:
        run_id = gateway.submit(job_name, run_config, {TAG_TRIGGER: "cli"})
        print(f"{job_name}: run {run_id} launched on {url}", file=sys.stderr, flush=True)
        from .run_progress import display_for

        with _following(lambda c: gateway.progress_page(run_id, c), display_for()):
            status = gateway.run_status(run_id)
            while status is not None and status not in FINISHED_STATUSES:
                time.sleep(config.wait_poll_seconds)
                status = gateway.run_status(run_id)
        outcome = gateway.outcome(run_id, job_name)
    except DagsterUnavailableError as exc:
        raise SystemExit(
            f"automem-pipelines: {exc} (is `automem-pipelines stack` running?)"
        ) from None
    except LaunchError as exc:
        raise SystemExit(f"automem-pipelines: {exc.message}") from None
    if status != "SUCCESS" or outcome.summary is None:
        if outcome.summary is not None:  # a run failed by its failure threshold: show it
            print(json.dumps(outcome.summary, indent=2))
        reasons = outcome.errors[-3:] or [f"the run ended {status or 'unknown to Dagster'}"]
        raise SystemExit(f"{job_name} run failed:\n" + "\n".join(reasons))
    return outcome.summary


def run_reembed(
    settings: Settings,
    batch_size: int,
    limit: int | None,
    force: bool,
    stack: str | None = None,
    max_cost_usd: float | None = None,
    max_tokens: int | None = None,
    plan_only: bool = False,
) -> dict:
    from .domain.params import ParamError
    from .run_config import reembed_run_config

    try:
        run_config = reembed_run_config(
            batch_size,
            limit,
            force,
            max_cost_usd=max_cost_usd,
            max_tokens=max_tokens,
            plan_only=plan_only,
        )
    except ParamError as exc:
        raise SystemExit(f"automem-pipelines: {exc}") from None
    if stack is not None:
        return hand_off(settings, stack or settings.api.dagster_url, REEMBED_JOB, run_config)
    return run_job(settings, REEMBED_JOB, run_config)


def cmd_demo(args: argparse.Namespace) -> None:
    from .domain.memory import node_props_for_write
    from .domain.sample import sample_memories

    settings = _settings()
    with _graph(settings) as graph:
        existing = graph.count_memories()
        if existing == 0:
            graph.ensure_indexes()
            graph.upsert_memories(node_props_for_write(m) for m in sample_memories(args.count))
            print(f"loaded {args.count} sample memories into {graph.config.describe()}")
        else:
            print(f"{graph.config.describe()} already holds {existing} memories")
    summary = run_reembed(settings, args.batch_size, None, args.force)
    print(json.dumps(summary, indent=2))


def cmd_reembed(args: argparse.Namespace) -> None:
    summary = run_reembed(
        _settings(),
        args.batch_size,
        args.limit,
        args.force,
        args.stack,
        max_cost_usd=args.max_cost_usd,
        max_tokens=args.max_tokens,
        plan_only=args.plan,
    )
    print(json.dumps(summary, indent=2))


def cmd_migrate(args: argparse.Namespace) -> None:
    from .domain.params import ParamError
    from .run_config import migrate_run_config

    settings = _settings()
    if args.status:
        print(json.dumps(migration_status(settings), indent=2, default=str))
        return
    action = "rollback" if args.rollback else "finalize" if args.finalize else "migrate"
    try:
        run_config = migrate_run_config(
            args.to_provider,
            args.to_model,
            args.to_dim,
            action=action,
            plan=args.plan,
            max_cost_usd=args.max_cost_usd,
            max_tokens=args.max_tokens,
            batch_size=args.batch_size,
            to_collection=args.to_collection,
            alias=args.alias,
        )
    except ParamError as exc:
        raise SystemExit(f"automem-pipelines migrate: {exc}") from None
    if args.stack is not None:
        summary = hand_off(
            settings, args.stack or settings.api.dagster_url, MIGRATE_JOB, run_config
        )
    else:
        summary = run_job(settings, MIGRATE_JOB, run_config)
    print(json.dumps(summary, indent=2, default=str))


def migration_status(settings: Settings) -> dict:
    """`migrate --status`: the record of the configured collection, read from the stores."""
    from .definitions import build_resources
    from .domain.migration import status
    from .stores.vectors import VectorStoreUnavailableError

    try:
        with (
            _graph(settings) as graph,
            build_resources(settings, from_env=False)["qdrant"].open_store() as vectors,
        ):
            return status(graph, vectors)
    except VectorStoreUnavailableError as exc:
        raise SystemExit(
            f"automem-pipelines: {exc} (with a running stack, GET /admin/migrate answers)"
        ) from None


def cmd_sync(args: argparse.Namespace) -> None:
    from .run_config import sync_run_config

    config = sync_run_config(args.batch_size, args.dry_run, args.recover_orphans)
    print(json.dumps(run_job(_settings(), DRIFT_SYNC_JOB, config), indent=2))


def cmd_enrich(args: argparse.Namespace) -> None:
    from .run_config import enrichment_run_config

    config = enrichment_run_config(args.ids, forced=args.forced)
    print(json.dumps(run_job(_settings(), ENRICHMENT_JOB, config), indent=2, default=str))


def cmd_enrichment_status(args: argparse.Namespace) -> None:
    """What /enrichment/status answers, read in process: the scheduler state from the
    Dagster instance (the same function the API feeds from GraphQL) and the graph's counts."""
    import dagster as dg

    from .domain.enrichment_status import enrichment_status
    from .instance import ensure_dagster_home
    from .status import scheduler_state_from_instance

    settings = _settings()
    ensure_dagster_home(settings)
    with dg.DagsterInstance.get() as instance:
        scheduler = scheduler_state_from_instance(instance, settings.enrichment.sensor_enabled)
    with _graph(settings) as graph:
        status = enrichment_status(
            graph, scheduler, settings.enrichment.max_attempts, settings.recall_excluded_types
        )
    print(json.dumps(status, indent=2, default=str))


def cmd_import(args: argparse.Namespace) -> None:
    from .domain.importer import (
        ImportFileError,
        ImportValidationError,
        read_import_file,
        write_records,
    )

    try:  # the whole file is read and validated before the graph is opened
        records = read_import_file(args.file)
    except ImportFileError as exc:
        raise SystemExit(f"automem-pipelines import: {exc}") from None
    except ImportValidationError as exc:
        raise SystemExit(f"automem-pipelines import: refused, nothing written: {exc}") from None
    settings = _settings()
    with _graph(settings) as graph:
        written = write_records(graph, records)
    print(f"imported {written} memories into {graph.config.describe()}")


def cmd_sample(args: argparse.Namespace) -> None:
    from .domain.memory import node_props_for_write
    from .domain.sample import sample_memories

    memories = sample_memories(args.count, seed=args.seed)
    if args.load:
        settings = _settings()
        with _graph(settings) as graph:
            existing = graph.count_memories()
            if existing and not args.replace:
                raise SystemExit(
                    f"automem-pipelines sample: refused, nothing written: "
                    f"{graph.config.describe()} already holds {existing} memories, and loading "
                    "the sample would overwrite those with the same ids and reset their "
                    "enrichment. Pass --replace to load it anyway, or set FALKORDB_GRAPH to "
                    "an empty graph."
                )
            graph.ensure_indexes()
            n = graph.upsert_memories(node_props_for_write(m) for m in memories)
        print(f"loaded {n} sample memories into {graph.config.describe()}")
        return
    if args.replace:
        raise SystemExit("automem-pipelines sample: --replace only applies with --load")
    try:
        out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout
    except OSError as exc:
        raise SystemExit(
            f"automem-pipelines sample: cannot write {args.out}: {exc.strerror or exc}"
        ) from None
    try:
        for memory in memories:
            out.write(json.dumps(memory, ensure_ascii=False) + "\n")
    finally:
        if args.out:
            out.close()


def _show_falkordb_progress() -> None:
    """Print the embedded server's start-up progress (a big store takes a while to load)."""
    import logging

    from .stores import falkordb_server

    logger = logging.getLogger(falkordb_server.__name__)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def cmd_falkordb(args: argparse.Namespace) -> None:
    from .stores import falkordb_server

    settings = _settings()
    if settings.falkordb.host:
        raise SystemExit("FALKORDB_HOST is set: the embedded server is not in use")
    try:
        if args.action == "start":
            _show_falkordb_progress()
            socket = falkordb_server.ensure_running(
                settings.data_dir, timeout=settings.falkordb.start_timeout_seconds
            )
            print(f"FalkorDB listening on {socket}")
        elif args.action == "stop":
            stopped = falkordb_server.stop(settings.data_dir)
            print("stopped" if stopped else "not running")
        else:
            # Exit code: 0 running, 3 stopped, 4 starting or loading, 5 alive but not answering.
            status = falkordb_server.status(settings.data_dir)
            print(status.describe())
            raise SystemExit(status.exit_code)
    except falkordb_server.EmbeddedFalkorDBError as exc:
        raise SystemExit(f"automem-pipelines: {exc}") from None


def cmd_stack(args: argparse.Namespace) -> None:
    from .stack import allow_remote_from_env, serve_forever

    _show_falkordb_progress()
    api = None if args.no_api else (args.api_host, args.api_port)
    allow_remote = args.allow_remote_webserver or allow_remote_from_env()
    serve_forever(_settings(), args.host, args.port, api=api, allow_remote_webserver=allow_remote)


def _count(text: str) -> int:
    """A whole number of at least 1 (argparse type)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _batch_size_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help="memories per embedding-provider call (1 to 2048; default %(default)s)",
    )


def _reembed_args(p: argparse.ArgumentParser) -> None:
    _batch_size_arg(p)
    p.add_argument(
        "--force",
        action="store_true",
        help="re-embed every memory, also those whose content and model are unchanged "
        "(default: only changed ones)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: every option has a help text that shows its default."""
    parser = argparse.ArgumentParser(prog="automem-pipelines", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="load the sample store if the graph is empty, then re-embed")
    p.add_argument(
        "--count",
        type=_count,
        default=DEMO_SAMPLE_SIZE,
        metavar="N",
        help="sample memories to load into an empty graph (default %(default)s)",
    )
    _reembed_args(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "reembed", help="run the re-embed job in this process, or on a running stack (--stack)"
    )
    _reembed_args(p)
    p.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help="re-embed at most N memories (default: all of them)",
    )
    p.add_argument(
        "--stack",
        nargs="?",
        const="",
        default=None,
        metavar="URL",
        help="hand the run to a running `automem-pipelines stack`: its Dagster webserver at URL "
        "(default DAGSTER_WEBSERVER_URL, http://127.0.0.1:3000); wait and print its summary "
        "(default without --stack: run the job in this process)",
    )
    p.add_argument(
        "--plan",
        action="store_true",
        help="print the plan as JSON (memories to embed, tokens, cost_usd, seconds) and stop: "
        "no embedding-provider call (default: plan, then run)",
    )
    p.add_argument(
        "--max-cost-usd",
        type=float,
        default=None,
        metavar="USD",
        help="refuse the run, before any provider call, when its estimated cost is above USD "
        "(default REEMBED_MAX_COST_USD, 10)",
    )
    p.add_argument(
        "--max-tokens",
        type=int,
        default=None,
        metavar="N",
        help="refuse the run, before any provider call, when it would embed more than N tokens "
        "(default REEMBED_MAX_TOKENS, unset: no token budget)",
    )
    p.set_defaults(func=cmd_reembed)

    p = sub.add_parser(
        "migrate",
        help="move the store to another embedding model with no recall downtime (a new "
        "collection beside the live one, then a cutover); --status, --rollback, --finalize",
    )
    p.add_argument(
        "--to-provider",
        metavar="P",
        help="target provider: openai, voyage, ollama or local (no default: required to migrate)",
    )
    p.add_argument(
        "--to-model",
        metavar="M",
        help="target model, e.g. text-embedding-3-large (no default: required to migrate)",
    )
    p.add_argument(
        "--to-dim",
        type=int,
        metavar="D",
        help="target vector size (no default: required to migrate)",
    )
    actions = p.add_mutually_exclusive_group()
    actions.add_argument(
        "--status",
        action="store_true",
        help="print the migration's state "
        "as JSON (stage, collections, counts) and exit; no run (default: off)",
    )
    actions.add_argument(
        "--rollback",
        action="store_true",
        help="readers back to the old "
        "collection; what changed since the cutover is embedded into it "
        "(default: off)",
    )
    actions.add_argument(
        "--finalize",
        action="store_true",
        help="delete the old collection after a confirmed cutover (default: off)",
    )
    actions.add_argument(
        "--plan",
        action="store_true",
        help="print the plan as JSON "
        "(memories, tokens, cost_usd, seconds) and stop: no provider call "
        "(default: plan, then run)",
    )
    _batch_size_arg(p)
    p.add_argument(
        "--max-cost-usd",
        type=float,
        default=None,
        metavar="USD",
        help="refuse, "
        "before any provider call, when the estimate is above USD (default "
        "REEMBED_MAX_COST_USD, 10)",
    )
    p.add_argument(
        "--max-tokens",
        type=int,
        default=None,
        metavar="N",
        help="refuse, before "
        "any provider call, above N tokens (default REEMBED_MAX_TOKENS, unset: none)",
    )
    p.add_argument(
        "--to-collection",
        metavar="NAME",
        default=None,
        help="the new collection's name (default <QDRANT_COLLECTION>__<model>_<dim>)",
    )
    p.add_argument(
        "--alias",
        metavar="NAME",
        default=None,
        help="an alias the readers "
        "resolve, switched at cutover (default: QDRANT_COLLECTION when it is an "
        "alias; else the cutover is AutoMem's QDRANT_COLLECTION and a restart)",
    )
    p.add_argument(
        "--stack",
        nargs="?",
        const="",
        default=None,
        metavar="URL",
        help="hand the "
        "run to a running `automem-pipelines stack` at URL (default "
        "DAGSTER_WEBSERVER_URL); default: run in this process",
    )
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("sync", help="run the drift-sync job (detect, then repair) in this process")
    _batch_size_arg(p)
    p.add_argument(
        "--dry-run", action="store_true", help="report drift, write nothing (default: repair it)"
    )
    p.add_argument(
        "--recover-orphans",
        action="store_true",
        help="restore points that have no memory in the graph as memories "
        "(default: report them only)",
    )
    p.set_defaults(func=cmd_sync)

    p = sub.add_parser("enrich", help="run the enrichment job on the given memory ids")
    p.add_argument("ids", nargs="+", metavar="ID", help="memory ids (UUIDs) to enrich")
    p.add_argument(
        "--forced",
        action="store_true",
        help="re-enrich even processed or failed memories (default: skip them)",
    )
    p.set_defaults(func=cmd_enrich)

    p = sub.add_parser("enrichment-status", help="the enrichment queue and scheduler state")
    p.set_defaults(func=cmd_enrichment_status)

    p = sub.add_parser(
        "import",
        help="import memories from a JSON Lines file (every line checked first: "
        "one bad line writes nothing)",
    )
    p.add_argument(
        "file",
        type=Path,
        metavar="FILE",
        help="JSON Lines, one memory per line: content (required), id (UUID; new if absent), "
        "tags, metadata, type, importance, confidence, timestamp",
    )
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("sample", help="generate sample memories (JSON Lines, or --load)")
    p.add_argument(
        "--count",
        type=_count,
        default=1000,
        metavar="N",
        help="how many memories (default %(default)s)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=7,
        metavar="S",
        help="random seed: the same seed gives the same memories and ids (default %(default)s)",
    )
    target = p.add_mutually_exclusive_group()
    target.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FILE",
        help="write the JSON Lines to FILE (default: standard output)",
    )
    target.add_argument(
        "--load",
        action="store_true",
        help="write them into the graph instead; refused if it already holds memories "
        "unless --replace (default: off)",
    )
    p.add_argument(
        "--replace",
        action="store_true",
        help="with --load: load into a graph that already holds memories, overwriting those "
        "with the sample's ids and resetting their enrichment (default: refuse)",
    )
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("falkordb", help="manage the embedded FalkorDB server")
    p.add_argument(
        "action",
        choices=["start", "stop", "status"],
        help="start it (and wait until it answers), stop it, or show its state (exit 0 "
        "running, 3 stopped, 4 starting or loading, 5 alive but not answering)",
    )
    p.set_defaults(func=cmd_falkordb)

    p = sub.add_parser(
        "stack", help="run FalkorDB + dagster-webserver + dagster-daemon + admin API"
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="webserver bind address; loopback only unless --allow-remote-webserver "
        "(default %(default)s)",
    )
    p.add_argument(
        "--port", type=int, default=3000, help="webserver (Dagster UI) port (default %(default)s)"
    )
    p.add_argument(
        "--allow-remote-webserver",
        action="store_true",
        help="let the webserver (no authentication of its own) listen beyond loopback "
        "(also AUTOMEM_ALLOW_REMOTE_WEBSERVER=true; default: refuse)",
    )
    p.add_argument(
        "--api-host", default="127.0.0.1", help="admin API bind address (default %(default)s)"
    )
    p.add_argument(
        "--api-port", type=int, default=8001, help="admin API port (default %(default)s)"
    )
    p.add_argument(
        "--no-api", action="store_true", help="do not start the admin API (default: start it)"
    )
    p.set_defaults(func=cmd_stack)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except ValueError as exc:  # parameter validation (names the field and range)
        raise SystemExit(f"automem-pipelines: {exc}") from None


if __name__ == "__main__":
    main()
